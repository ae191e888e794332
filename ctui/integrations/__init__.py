"""Bridges to the real tools underneath: MLflow (tracking), DVC (metrics files)."""
