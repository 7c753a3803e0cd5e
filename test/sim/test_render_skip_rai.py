"""The RAI image envs skip the camera between a chunk's replans: same observations where they are read, ~8x fewer
renders (lpds_core.chunking.render_skipper, PandaTaskEnv.skip_render)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
    import warnings
    warnings.simplefilter("error")
    import gymnasium as gym
    import numpy as np
    import lpds_sim
    from lpds_core.chunking import ActionChunkWrapper
    from lpds_sim.evaluation import evaluate_grid

    rng = np.random.default_rng(0)
    chunks = [rng.uniform(-1, 1, (8, 4)).astype(np.float32) for _ in range(4)]
    seen, renders = {}, {}
    for skip in (True, False):
        # 20-step episodes: the third chunk ends after 4 of its 8 steps
        # (the env's own limit: gym.make(..., max_episode_steps=) would add a TimeLimit, behind which nothing skips)
        env = ActionChunkWrapper(gym.make(lpds_sim.ENV_IDS["pick_place"], obs_mode="image", privileged_state=True), 8)
        u = env.unwrapped
        u.max_episode_steps = 20
        if not skip:
            u.skip_render = None          # no hook: every step renders
        cam, n = u._camera, [0]
        render = cam.render
        def counted(*a, **k):
            n[0] += 1
            return render(*a, **k)
        cam.render = counted
        obs, _ = env.reset(seed=3)
        out = []
        for c in chunks[:3]:
            obs, r, term, trunc, info = env.step(c)
            out.append((obs, info["chunk_steps"], trunc))
        seen[skip], renders[skip] = out, n[0]
        env.close()
    for (o1, k1, t1), (o2, k2, t2) in zip(seen[True], seen[False]):
        assert k1 == k2 and t1 == t2 and set(o1) == set(o2)
        # the physics is untouched; renders of one scene differ by at most a grey level / 1e-6 m between GL
        # contexts of one process (the first env's context renders a hair differently from later ones)
        assert np.array_equal(o1["state"], o2["state"]) and np.array_equal(o1["proprio"], o2["proprio"])
        assert np.abs(o1["rgb"].astype(int) - o2["rgb"].astype(int)).max() <= 1
        assert np.abs(o1["depth"] - o2["depth"]).max() < 1e-5
    assert [k for _, k, _ in seen[True]] == [8, 8, 4] and seen[True][-1][2]
    assert renders[False] == 1 + 20 and renders[True] == 1 + 3, renders
    print("CHUNKS-OK", renders, flush=True)
"""


@pytest.mark.display
def test_chunked_image_env_renders_only_the_observations_a_policy_reads(tmp_path):
    pytest.importorskip("robotic")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=180, env=dict(os.environ))
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    assert "CHUNKS-OK" in out.stdout
