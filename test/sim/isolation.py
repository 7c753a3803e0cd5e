"""`@isolated`: run a test in a fresh pytest process.

Why: an RAI env built and closed in a process changes the physics of later envs in that process (PhysX keeps
process-wide state; seen as test_rai_pick_place's lift falling 1 cm short), so a test that builds envs with
unusual physics must not share its process with the tests after it.
"""
from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def isolated(test):
    """The test runs in `python -m pytest FILE::NAME` (its own process); the outer run passes when it passes."""
    path = inspect.getfile(test)

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get("LPDS_ISOLATED_TEST") == test.__name__:
            return test(*args, **kwargs)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               f"{path}::{test.__name__}"], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "LPDS_ISOLATED_TEST": test.__name__}, cwd=ROOT)
        assert proc.returncode == 0 and " passed" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    return wrapper
