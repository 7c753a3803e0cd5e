"""Make sure an X display exists before RAI renders anything.

RAI renders through GLFW/GLX only. Creating a CameraView without `DISPLAY` raises, and the process then dies with
SIGABRT when the view is destroyed. So rendering code calls `ensure_display()` first: it keeps an existing display,
otherwise starts a private Xvfb, otherwise raises a clear `NoDisplayError` — never an abort.

The private Xvfb must outlive every X connection of this process (GLFW closes its connection only during C++
static destruction, after Python's atexit hooks; killing the server earlier segfaults the process at exit). So a
tiny shell watchdog owns the Xvfb and stops it once this process has exited.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lpds_core.errors import UserError

_WATCHDOG: subprocess.Popen | None = None

# the watchdog: start Xvfb, wait while both the owner process and Xvfb live, then stop Xvfb
_WATCHDOG_SH = ('"$0" "$1" -screen 0 640x480x24 -nolisten tcp >/dev/null 2>&1 & x=$!; '
                'trap \'kill $x 2>/dev/null; exit 0\' TERM INT; '
                'while kill -0 "$2" 2>/dev/null && kill -0 $x 2>/dev/null; do sleep 0.3; done; '
                'kill $x 2>/dev/null; wait $x 2>/dev/null')


class NoDisplayError(UserError):
    """No X server is available and none could be started."""


def _free_display_number() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise NoDisplayError("no free X display number in :90-:199 for Xvfb")


def ensure_display(start_xvfb: bool = True, timeout_s: float = 15.0) -> str:
    """Return a usable DISPLAY, starting our own Xvfb if needed and allowed."""
    global _WATCHDOG
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
        proc = subprocess.Popen(["sh", "-c", _WATCHDOG_SH, exe, f":{num}", str(os.getpid())],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # Xvfb exited (lost a race for this number?): try another
            if Path(f"/tmp/.X11-unix/X{num}").exists():
                _WATCHDOG = proc
                os.environ["DISPLAY"] = f":{num}"
                return os.environ["DISPLAY"]
            time.sleep(0.05)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    raise NoDisplayError("could not start Xvfb; run under `xvfb-run -a ...` instead")
