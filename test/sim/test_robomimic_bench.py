"""The `robomimic` bench suite: its base is BC on the scripted demos, cached (found, not retrained; a broken
file is named, never replaced); its evaluate() reports success; a tiny bench runs base and LP-DS end to end."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("robosuite")

TINY = dict(n_demos=2, bc_steps=20, hidden=32, n_layers=2)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("rm")
    old = os.environ.get("LPDS_ROBOMIMIC_DIR")
    os.environ["LPDS_ROBOMIMIC_DIR"] = str(root / "data")
    try:
        from lpds_sim.benchmarks.robomimic_bases import robomimic_base_policy

        model, path = robomimic_base_policy("lift", cache_dir=root / "cache", progress=False, **TINY)
        yield root, model, path
    finally:
        if old is None:
            os.environ.pop("LPDS_ROBOMIMIC_DIR")
        else:
            os.environ["LPDS_ROBOMIMIC_DIR"] = old


def test_base_is_trained_on_the_scripted_demos_and_cached(tiny_base, monkeypatch):
    from lpds_core.checkpoint import load_backbone
    from lpds_core.errors import CheckpointError
    from lpds_sim.benchmarks.robomimic_bases import robomimic_base_policy
    from lpds_sim.benchmarks.robomimic_data import load_robomimic

    root, model, path = tiny_base
    monkeypatch.setenv("LPDS_ROBOMIMIC_DIR", str(root / "data"))
    (demo,) = list((root / "data" / "lift").glob("scripted_n2_seed0.hdf5"))
    eps, meta = load_robomimic(demo)
    assert len(eps) == 2 and all(ep["rewards"][-1] == 1.0 for ep in eps)  # kept demos succeed
    loaded = load_backbone(path)
    assert (loaded.obs_dim, loaded.act_dim, loaded.horizon) == (19, 7, 4)
    mtime = path.stat().st_mtime_ns
    _, again = robomimic_base_policy("lift", cache_dir=root / "cache", progress=False, **TINY)
    assert again == path and path.stat().st_mtime_ns == mtime  # found, not retrained
    _, other = robomimic_base_policy("lift", cache_dir=root / "cache", progress=False, **dict(TINY, bc_steps=21))
    assert other != path  # another setting is another file
    with pytest.raises(ValueError, match="unknown robomimic base setting"):
        robomimic_base_policy("lift", cache_dir=root / "cache", progress=False, n_demo=3)
    broken = root / "broken"
    broken.mkdir()
    copy = broken / path.name
    copy.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unusable"):
        robomimic_base_policy("lift", cache_dir=broken, progress=False, **TINY)
    assert copy.read_bytes() == b"not a checkpoint"


def test_suite_evaluates_success_and_a_tiny_bench_runs(tiny_base, tmp_path):
    from lpds_sim.benchmarks import one_run
    from lpds_sim.benchmarks.suites import get_suite
    from lpds_sim.benchmarks.sweep import plan

    from bench_helpers import tiny_bench_config

    _root, _model, path = tiny_base
    suite = get_suite("robomimic")
    assert suite.metric == "success" and suite.tasks == ("lift", "can", "square")
    # holding still never lifts the cube: success 0 after the full 300 steps
    still = suite.evaluate("lift", lambda o: np.zeros((len(o), 4, 7)), 1, seed=0)
    assert still["success"] == 0.0 and still["length"] == 300
    assert suite.entropy_observations("lift", 2, 0).shape == (2, 19)
    cfg = tiny_bench_config("robomimic", "lift", tmp_path / "out", ["base", "lpds"], trials=1, entropy_samples=16,
                            env_steps=80, warmup_steps=40, eval_every=80, ckpt_every=80, batch_size=16, eval_trials=1)
    metrics = [one_run.execute(j) for j in plan(cfg, {("lift", "flow"): str(path)})]
    for m in metrics:
        assert 0.0 <= m["success"] <= 1.0
    assert metrics[1]["env_steps"] >= 80 and metrics[1]["updates"] > 0
