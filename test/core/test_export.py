"""ONNX export: torch/onnxruntime parity for flow + diffusion, state + image; OnnxPolicy input checks."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from lpds_core.errors import CheckpointError
from lpds_core.diffusion import DiffusionPolicy
from lpds_core.export import OnnxPolicy, export_onnx
from lpds_core.flow_matching import FlowMatchingPolicy

torch.set_num_threads(1)
P_DIM, H, A = 5, 4, 3


class TinyPerturbation(nn.Module):
    """Δθ(features) → (B, H, A): a real small MLP, as the steering code will provide."""

    def __init__(self, feature_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, 32), nn.Tanh(), nn.Linear(32, H * A))

    def forward(self, features):
        return self.net(features).reshape(-1, H, A)


class TinyEpsPerturbation(nn.Module):
    """Δθ(features, ε) variant."""

    def __init__(self, feature_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim + H * A, 32), nn.Tanh(), nn.Linear(32, H * A))

    def forward(self, features, eps):
        return self.net(torch.cat([features, eps.flatten(1)], dim=-1)).reshape(-1, H, A)


def _obs(obs_type, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    if obs_type == "state":
        return torch.randn((b, P_DIM), generator=g) * 2 + 1
    return {"rgb": torch.randint(0, 256, (b, 3, 84, 84), generator=g, dtype=torch.uint8),
            "depth": torch.rand((b, 1, 84, 84), generator=g) * 2.5, "proprio": torch.randn((b, P_DIM), generator=g)}


def _np(obs):
    return obs.numpy() if isinstance(obs, torch.Tensor) else {k: v.numpy() for k, v in obs.items()}


def _model(cls, obs_type):
    torch.manual_seed(1)
    m = cls(P_DIM, A, H, obs_type=obs_type, hidden=64, n_layers=2)
    m.fit_normalizers(_obs(obs_type, 16, seed=5), torch.rand(16, H, A) * 4 - 2)
    return m.freeze()


CASES = [(c, o) for c in (FlowMatchingPolicy, DiffusionPolicy) for o in ("state", "image")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{c.kind}-{o}" for c, o in CASES])
def exported(request, tmp_path_factory):
    cls, obs_type = request.param
    m = _model(cls, obs_type)
    pert = TinyPerturbation(m.feature_dim).eval()
    out = tmp_path_factory.mktemp(f"{cls.kind}_{obs_type}")
    paths = export_onnx(m, pert, out, {"task": "toy", "algo": "lpds", "delta": 0.05})
    return m, pert, out, paths


def test_export_parity_and_metadata(exported):
    m, pert, out, paths = exported
    assert set(paths) == {"decoder", "perturbation"}
    for p in paths.values():
        assert p.is_file() and not list(out.glob("*.data")), "self-contained single files"
    policy = OnnxPolicy(out)
    for b in (1, 3, 7):  # dynamic batch (exported with an example batch of 2)
        obs = _obs(m.obs_type, b, seed=b)
        eps = torch.randn(b, H, A, generator=torch.Generator().manual_seed(b))
        with torch.no_grad():
            ref = m.decode(obs, eps + pert(m.encode(obs))).numpy()
            ref_bare = m.decode(obs, eps).numpy()
        np.testing.assert_allclose(policy.act(_np(obs), eps=eps.numpy()), ref, atol=1e-4, rtol=0)
        np.testing.assert_allclose(policy.decode(_np(obs), eps.numpy()), ref_bare, atol=1e-4, rtol=0)
    single = {k: v[0] for k, v in _np(obs).items()} if isinstance(obs, dict) else _np(obs)[0]
    a = policy.act(single, eps=eps[0].numpy())
    assert a.shape == (H, A)
    np.testing.assert_allclose(a, ref[0], atol=1e-4, rtol=0)
    a1, a2 = policy.act(single, rng=np.random.default_rng(0)), policy.act(single, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a1, a2)
    spec = policy.spec
    assert spec["horizon"] == H and spec["num_steps"] == 10 and spec["delta"] == 0.05 and spec["task"] == "toy"
    assert spec["backbone"] == m.kind and spec["obs_spec"] == m.obs_spec()
    np.testing.assert_allclose(spec["normalization"]["action"]["scale"], m.action_norm.scale.numpy(), rtol=1e-6)
    meta = {p.key: p.value for p in onnx.load(str(paths["decoder"])).metadata_props}
    assert '"algo": "lpds"' in meta["lpds"]


def test_onnx_policy_rejects_mismatched_observations(exported):
    m, _, out, _ = exported
    policy = OnnxPolicy(out)
    obs = _np(_obs(m.obs_type, 2))
    if m.obs_type == "state":
        with pytest.raises(ValueError, match=r"'state' has shape \(2, 6\)"):
            policy.act(np.zeros((2, P_DIM + 1), np.float32))
        with pytest.raises(ValueError, match="must be a float"):
            policy.act(obs.astype(np.int64))
        bad = obs.copy()
        bad[1, 2] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            policy.act(bad)
        with pytest.raises(ValueError, match="keys"):
            policy.act({"proprio": obs})
    else:
        with pytest.raises(ValueError, match=r"missing \['depth'\]"):
            policy.act({k: v for k, v in obs.items() if k != "depth"})
        with pytest.raises(ValueError, match=r"unexpected \['state'\]"):
            policy.act({**obs, "state": obs["proprio"]})
        with pytest.raises(ValueError, match="'rgb' must be uint8"):
            policy.act({**obs, "rgb": obs["rgb"].astype(np.float32)})
        with pytest.raises(ValueError, match=r"'rgb' has shape \(2, 3, 64, 64\)"):
            policy.act({**obs, "rgb": obs["rgb"][:, :, :64, :64]})
        with pytest.raises(ValueError, match="dict observation"):
            policy.act(obs["proprio"])
        bad = obs["depth"].copy()
        bad[0, 0, 0, 0] = np.inf
        with pytest.raises(ValueError, match="'depth' contains NaN or inf"):
            policy.act({**obs, "depth": bad})
    with pytest.raises(ValueError, match="eps has shape"):
        policy.act(obs, eps=np.zeros((2, H, A + 1), np.float32))
    other = {"state": {"shape": [P_DIM + 2], "dtype": "float32"}}
    with pytest.raises(ValueError, match="export the policy for this observation setup"):
        OnnxPolicy(out, obs_spec=other)
    assert OnnxPolicy(out, obs_spec=m.obs_spec()).obs_spec == m.obs_spec()


def test_eps_variant_action_space_and_no_perturbation(tmp_path):
    m = _model(FlowMatchingPolicy, "state")
    pert = TinyEpsPerturbation(m.feature_dim).eval()
    export_onnx(m, pert, tmp_path / "eps")
    policy = OnnxPolicy(tmp_path / "eps")
    assert policy.takes_eps
    obs, eps = _obs("state", 3), torch.randn(3, H, A)
    with torch.no_grad():
        ref = m.decode(obs, eps + pert(m.encode(obs), eps)).numpy()
    np.testing.assert_allclose(policy.act(obs.numpy(), eps=eps.numpy()), ref, atol=1e-4, rtol=0)

    plain = TinyPerturbation(m.feature_dim).eval()
    export_onnx(m, plain, tmp_path / "act", {"perturbation_space": "action"})
    policy = OnnxPolicy(tmp_path / "act")
    with torch.no_grad():
        ref = (m.decode(obs, eps) + plain(m.encode(obs))).numpy()
    np.testing.assert_allclose(policy.act(obs.numpy(), eps=eps.numpy()), ref, atol=1e-4, rtol=0)

    export_onnx(m, None, tmp_path / "act")  # base policy only: the stale perturbation must go
    policy = OnnxPolicy(tmp_path / "act")
    assert not (tmp_path / "act" / "perturbation.onnx").exists()
    with torch.no_grad():
        np.testing.assert_allclose(policy.act(obs.numpy(), eps=eps.numpy()), m.decode(obs, eps).numpy(), atol=1e-4)
    with pytest.raises(CheckpointError, match="no decoder.onnx"):
        OnnxPolicy(tmp_path / "missing")


def test_onnx_policy_runs_without_torch(exported):
    """The robot side imports only onnxruntime + numpy: lpds_core.onnx_policy must not pull torch in."""
    import subprocess
    import sys

    _, _, out, _ = exported
    code = (
        "import sys; from lpds_core.onnx_policy import OnnxPolicy; p = OnnxPolicy(sys.argv[1]); "
        "import numpy as np; obs = {k: np.zeros(v['shape'], v['dtype']) for k, v in p.obs_spec.items()}; "
        "obs = obs['state'] if list(obs) == ['state'] else obs; print(p.act(obs).shape, 'torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert res.stdout.split() == [f"({H},", f"{A})", "False"]


@pytest.mark.parametrize("space", ["noise", "action"])
def test_the_deploy_temperature_in_the_metadata_scales_eps_before_the_perturbation_sees_it(tmp_path, space):
    """metadata noise_scale = c: act(s, ε) decodes Φ(s, cε + Δ(s, cε)) (LP-DS-A: Φ(s, cε) + Δ(s, cε))."""
    m = _model(FlowMatchingPolicy, "state")
    pert = TinyEpsPerturbation(m.feature_dim).eval()
    export_onnx(m, pert, tmp_path / "c", {"noise_scale": 0.4, "perturbation_space": space})
    policy = OnnxPolicy(tmp_path / "c")
    assert policy.noise_scale == 0.4
    obs, eps = _obs("state", 3), torch.randn(3, H, A)
    ce = 0.4 * eps
    with torch.no_grad():
        d = pert(m.encode(obs), ce)
        ref = (m.decode(obs, ce + d) if space == "noise" else m.decode(obs, ce) + d).numpy()
    np.testing.assert_allclose(policy.act(obs.numpy(), eps=eps.numpy()), ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(policy.delta(obs.numpy(), eps=eps.numpy()), d.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), "0.5", True, None])
def test_an_export_with_a_bad_deploy_temperature_is_refused_on_load(tmp_path, bad):
    m = _model(FlowMatchingPolicy, "state")
    export_onnx(m, None, tmp_path, {"noise_scale": bad})
    with pytest.raises(CheckpointError, match="noise_scale"):
        OnnxPolicy(tmp_path)
