"""Live resource sampling: `process.ProcessTreeSampler` (psutil) and `gpu.GpuSampler` (NVML).

Both return plain dicts; the supervisor appends them to `resources.jsonl` and the TUI's
resources pane and `ctui top` show them. `summary.Peaks` folds samples into run peaks/means.
"""
