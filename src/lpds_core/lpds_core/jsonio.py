"""The one JSON writer of the project: strict JSON that any reader (Python, JavaScript, jq) accepts.

`json.dumps` writes NaN/Infinity by default, which is not JSON: a grid cell that was never run or a metric of an
empty window would make the whole file unreadable elsewhere. Every file LP-DS writes goes through `dumps`, which
maps non-finite floats to null and numpy scalars/arrays and paths to their plain values (numpy only).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """`obj` with non-finite floats as None, numpy values as Python values, tuples as lists, paths as strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of `obj` (non-finite floats → null); a value JSON cannot hold raises TypeError."""
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write `obj` as strict JSON to `path` (for atomic writes of run files use `lpds_sim.runs.atomic_write_json`)."""
    path = Path(path)
    path.write_text(dumps(obj, indent=indent))
    return path
