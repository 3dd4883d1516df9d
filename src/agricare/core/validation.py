"""Small validation helpers for parameter dataclasses (``__post_init__``)."""

from __future__ import annotations

import math


def require(condition: bool, field: str, message: str, value=None) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``condition`` holds."""
    if not condition:
        extra = "" if value is None else f" (got {value!r})"
        raise ValueError(f"parameter '{field}' {message}{extra}")


def require_positive(obj, *fields: str) -> None:
    """Every named attribute of ``obj`` is a finite number > 0."""
    for f in fields:
        v = getattr(obj, f)
        require(isinstance(v, (int, float)) and math.isfinite(v) and v > 0, f, "must be > 0", v)


def require_non_negative(obj, *fields: str) -> None:
    """Every named attribute of ``obj`` is a finite number >= 0."""
    for f in fields:
        v = getattr(obj, f)
        require(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, f, "must be >= 0", v)
