"""Image observations: the dict layout the backbone expects, and no SIGABRT without a display."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("robotic")

SCRIPT = textwrap.dedent("""
    import numpy as np
    from lpds_sim.rai.display import NoDisplayError
    from lpds_sim.tasks import make_env
    try:
        # privileged_state: the state vector rides along for training-time critics (the robot never sends it)
        env = make_env("pick_place", obs_mode="image", sensor_noise=True, privileged_state=True)
    except NoDisplayError as exc:
        print("CLEAR-ERROR", exc)
        raise SystemExit(0)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(4, dtype=np.float32))
    assert obs["rgb"].shape == (3, 84, 84) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (1, 84, 84) and obs["depth"].dtype == np.float32
    assert obs["proprio"].shape == (8,) and obs["proprio"].dtype == np.float32
    assert set(obs) == {"rgb", "depth", "proprio", "state"}
    layout = env.unwrapped.state_layout
    assert obs["state"].shape == (max(v.stop for v in layout.values()),)
    assert np.allclose(obs["state"][:8], obs["proprio"])    # the state starts with the proprio part
    d = obs["depth"][obs["depth"] > 0]
    assert 0.3 < np.median(d) < 2.0, np.median(d)          # metres
    assert obs["rgb"].std() > 5                              # a real picture, not a blank frame
    assert env.observation_space.contains(obs)
    env.close()
    print("IMAGE-OK")
""")


def test_image_env_without_display_does_not_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"rc={out.returncode} (134/-6 = SIGABRT)\n{out.stdout}\n{out.stderr[-2000:]}"
    assert "IMAGE-OK" in out.stdout or "CLEAR-ERROR" in out.stdout


def test_no_display_and_no_xvfb_is_a_clear_error(monkeypatch):
    from lpds_sim.rai import display
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(display.NoDisplayError, match="xvfb-run"):
        display.ensure_display(start_xvfb=False)
