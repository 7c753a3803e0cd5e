"""`lpds export` through the CLI: ONNX files with metadata, parity ≤ 1e-4 checked and recorded at export time."""
from __future__ import annotations

import json

import pytest

from lpds_sim import runs

pytest.importorskip("robotic")
pytest.importorskip("onnxruntime")


def test_export_cli_parity_and_metadata(tmp_path, capsys):
    import onnx

    from lpds_sim.cli import main
    from lpds_sim.export_run import export_valid
    from pipeline_helpers import make_base_run, make_steer_run

    base = make_base_run(tmp_path / "base")
    steer = make_steer_run(tmp_path / "steer", base)
    out = tmp_path / "onnx"
    assert main(["export", "--run", str(steer), "--out", str(out)]) == 0
    assert "max |torch − onnxruntime|" in capsys.readouterr().out
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    assert sorted(parity["files"]) == ["decoder.onnx", "perturbation.onnx"]
    assert export_valid(out)
    meta = json.loads({p.key: p.value for p in onnx.load(str(out / "decoder.onnx")).metadata_props}["lpds"])
    assert meta["task"] == "pick_place" and meta["algo"] == "lpds" and meta["delta"] == 0.5
    assert meta["horizon"] == 4 and meta["num_steps"] == 3 and "obs_spec" in meta

    # the exported policy is steered: it differs from the bare decoder on the same noise
    import numpy as np
    from lpds_core.onnx_policy import OnnxPolicy

    pol = OnnxPolicy(out)
    obs = np.zeros((1, 18), np.float32)
    eps = np.zeros((1, 4, 4), np.float32)
    assert np.abs(pol.act(obs, eps=eps) - pol.decode(obs, eps)).max() > 1e-3


def test_export_refuses_unfinished_run(tmp_path, capsys):
    from lpds_sim.cli import main
    from lpds_sim.train_steer import SteerConfig
    from pipeline_helpers import make_base_run

    base = make_base_run(tmp_path / "base")
    runs.RunDir.open(tmp_path / "steer", SteerConfig(base=str(base), task="pick_place"), resume=False, kind="steer")
    assert main(["export", "--run", str(tmp_path / "steer"), "--out", str(tmp_path / "o")]) == 2
    assert "not finished" in capsys.readouterr().err


def test_an_export_at_a_deploy_temperature_decodes_c_eps_everywhere_it_is_run(tmp_path, capsys):
    """`lpds export --noise-scale c`: parity holds against the torch agent at c·ε, and the ONNX policy decodes
    c·ε + Δ(s, c·ε) for every caller (eval, the ROS runner, bag replay), so a recorded ε replays the same chunk."""
    import numpy as np
    from lpds_core.onnx_policy import OnnxPolicy

    from lpds_sim.cli import main
    from pipeline_helpers import make_base_run, make_steer_run

    base = make_base_run(tmp_path / "base")
    steer = make_steer_run(tmp_path / "steer", base)
    assert main(["export", "--run", str(steer), "--out", str(tmp_path / "c1")]) == 0
    assert main(["export", "--run", str(steer), "--out", str(tmp_path / "c03"), "--noise-scale", "0.3"]) == 0
    assert "c = 0.3" in capsys.readouterr().out
    parity = json.loads((tmp_path / "c03" / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["noise_scale"] == 0.3
    at1, at03 = OnnxPolicy(tmp_path / "c1"), OnnxPolicy(tmp_path / "c03")
    assert (at1.noise_scale, at03.noise_scale) == (1.0, 0.3)
    obs = np.random.default_rng(0).normal(size=(6, 18)).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((6, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(at03.act(obs, eps=eps), at1.act(obs, eps=np.float32(0.3) * eps), atol=1e-6)
    np.testing.assert_allclose(at03.delta(obs, eps=eps), at1.delta(obs, eps=np.float32(0.3) * eps), atol=1e-6)
    assert np.abs(at03.act(obs, eps=eps) - at1.act(obs, eps=eps)).max() > 1e-3
    # and the base export (no perturbation) takes the temperature too
    assert main(["export", "--run", str(base), "--out", str(tmp_path / "b0"), "--noise-scale", "0"]) == 0
    b0 = OnnxPolicy(tmp_path / "b0")
    np.testing.assert_allclose(b0.act(obs, eps=eps), b0.decode(obs, np.zeros_like(eps)), atol=1e-6)


@pytest.mark.parametrize("value", ["-0.5", "inf", "nan"])
def test_a_bad_deploy_temperature_is_one_line_and_exports_nothing(value, tmp_path, capsys):
    from lpds_sim.cli import main
    from pipeline_helpers import make_base_run, make_steer_run

    base = make_base_run(tmp_path / "base")
    steer = make_steer_run(tmp_path / "steer", base)
    assert main(["export", "--run", str(steer), "--out", str(tmp_path / "o"), "--noise-scale", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--noise-scale" in err[0] and "finite number ≥ 0" in err[0]
    assert not (tmp_path / "o").exists()
