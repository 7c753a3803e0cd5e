"""Make sure an X display exists before RAI renders anything.

RAI renders through GLFW/GLX only. Creating a CameraView without `DISPLAY` raises, and the process then dies with
SIGABRT when the view is destroyed. So rendering code calls `ensure_display()` first: it keeps an existing display,
otherwise starts a private Xvfb (stopped at exit), otherwise raises a clear RuntimeError — never an abort.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from pathlib import Path

_XVFB: subprocess.Popen | None = None


class NoDisplayError(RuntimeError):
    """No X server is available and none could be started."""


def _free_display_number() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise NoDisplayError("no free X display number in :90-:199 for Xvfb")


def _stop_xvfb() -> None:
    global _XVFB
    if _XVFB is not None and _XVFB.poll() is None:
        _XVFB.terminate()
        try:
            _XVFB.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _XVFB.kill()
    _XVFB = None


def ensure_display(start_xvfb: bool = True, timeout_s: float = 10.0) -> str:
    """Return a usable DISPLAY, starting our own Xvfb if needed and allowed."""
    global _XVFB
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"]
    exe = shutil.which("Xvfb")
    if not start_xvfb or exe is None:
        raise NoDisplayError(
            "image observations need an X server (RAI renders with GLX) and DISPLAY is not set; "
            "run under `xvfb-run -a ...`, or install Xvfb (apt-get install xvfb xauth) so it can be started "
            "automatically")
    for _ in range(3):
        num = _free_display_number()
        proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # lost a race for this number; try another
            if Path(f"/tmp/.X11-unix/X{num}").exists():
                _XVFB = proc
                atexit.register(_stop_xvfb)
                os.environ["DISPLAY"] = f":{num}"
                return os.environ["DISPLAY"]
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise NoDisplayError("could not start Xvfb; run under `xvfb-run -a ...` instead")
