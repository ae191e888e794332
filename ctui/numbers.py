"""When two recorded numbers count as the same value (stdlib only: the diff and reproduce use it).

Integers compare exactly, floats within a relative tolerance (`DEFAULT_REL_TOL` unless told),
NaN equals NaN; anything that is not a number (bools included) compares with `==`.
"""

from __future__ import annotations

import math
from typing import Any

#: the default relative tolerance for float metrics (`ctui diff` and `ctui reproduce`)
DEFAULT_REL_TOL = 1e-6


def metric_equal(a: Any, b: Any, *, rel_tol: float = DEFAULT_REL_TOL) -> bool:
    """Equal as metrics: ints exactly, floats within `rel_tol` (relative, no absolute floor)."""
    numbers = (int, float)
    if (
        isinstance(a, bool)
        or isinstance(b, bool)
        or not (isinstance(a, numbers) and isinstance(b, numbers))
    ):
        return bool(a == b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=0.0)


def as_number(value: Any) -> float | None:
    """A float for a number, a bool (0/1) or numeric text; None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
