"""Backbones: normalisers, encoders, flow-matching (and diffusion) decoding, checkpoints."""
import pytest
import torch

from lpds_core.checkpoint import CheckpointError, load_backbone, read_metadata, save_backbone
from lpds_core.diffusion import DiffusionPolicy, make_alphas_cumprod
from lpds_core.encoders import ImageEncoder, StateEncoder
from lpds_core.flow_matching import FlowMatchingPolicy
from lpds_core.normalization import Normalizer

torch.set_num_threads(1)

OBS, ACT, H = 5, 3, 4


def _image_obs(b=2, p=6, size=(84, 84), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "rgb": torch.randint(0, 256, (b, 3, *size), generator=g, dtype=torch.uint8),
        "depth": torch.rand((b, 1, *size), generator=g) * 1.5,
        "proprio": torch.randn((b, p), generator=g),
    }


BACKBONES = [FlowMatchingPolicy, DiffusionPolicy]


def _fitted_flow(cls=FlowMatchingPolicy, **kw):
    torch.manual_seed(0)
    m = cls(OBS, ACT, H, hidden=64, n_layers=2, **kw)
    m.fit_normalizers(torch.randn(100, OBS) * 3 + 1, torch.rand(100, H, ACT) * 4 - 1)
    return m


# ---- normalisation -------------------------------------------------------------------------------------------
def test_minmax_normalizer_maps_range_to_unit_box_and_round_trips():
    x = torch.tensor([[0.0, 10.0, 5.0], [2.0, 30.0, 5.0], [1.0, 20.0, 5.0]])
    n = Normalizer(3, mode="minmax").fit(x)
    y = n.normalize(x)
    assert torch.allclose(y[:, :2].min(0).values, torch.tensor([-1.0, -1.0]))
    assert torch.allclose(y[:, :2].max(0).values, torch.tensor([1.0, 1.0]))
    assert torch.equal(y[:, 2], torch.zeros(3)), "a constant dim is centred, not divided by 0"
    assert torch.allclose(n.unnormalize(y), x)
    assert bool(n.fitted)


def test_meanstd_normalizer_standardises_and_guards_constant_dims():
    x = torch.randn(1000, 4) * torch.tensor([1.0, 10.0, 0.1, 0.0]) + 7
    y = Normalizer(4).fit(x).normalize(x)
    assert torch.isfinite(y).all()
    assert torch.allclose(y[:, :3].std(0), torch.ones(3), atol=1e-2)
    assert torch.allclose(y.mean(0), torch.zeros(4), atol=1e-4)


def test_normalizer_rejects_bad_data():
    with pytest.raises(ValueError, match="NaN"):
        Normalizer(2).fit(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="last dimension 2"):
        Normalizer(2).fit(torch.zeros(3, 5))


# ---- encoders --------------------------------------------------------------------------------------------------
def test_minmax_observation_normalisation_option():
    m = FlowMatchingPolicy(2, 1, 1, obs_norm="minmax")
    obs = torch.tensor([[0.0, 5.0], [4.0, 5.0], [2.0, 5.0]])
    m.fit_normalizers(obs, torch.zeros(3, 1, 1))
    assert torch.allclose(m.encode(obs), torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
    assert m.config["obs_norm"] == "minmax"


def test_state_encoder_rejects_nan_and_wrong_shapes():
    enc = StateEncoder(OBS)
    assert enc(torch.zeros(2, OBS)).shape == (2, OBS)
    assert enc(torch.zeros(2, OBS, dtype=torch.float64)).dtype == torch.float32
    with pytest.raises(ValueError, match="NaN"):
        enc(torch.tensor([[0.0, 1.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"expected \(B, 5\).*batch dimension"):
        enc(torch.zeros(OBS))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        enc(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="not a dict"):
        enc({"state": torch.zeros(2, OBS)})


def test_image_encoder_features_and_errors():
    enc = ImageEncoder(6)
    obs = _image_obs()
    assert enc(obs).shape == (2, enc.feature_dim) == (2, 64 + 6)
    with pytest.raises(ValueError, match="missing key"):
        enc({k: v for k, v in obs.items() if k != "depth"})
    with pytest.raises(ValueError, match="uint8"):
        enc({**obs, "rgb": obs["rgb"].float()})
    with pytest.raises(ValueError, match=r"'rgb' has shape"):
        enc({**obs, "rgb": obs["rgb"][:, :, :64, :64]})
    bad = obs["depth"].clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="'depth' contains NaN"):
        enc({**obs, "depth": bad})
    with pytest.raises(ValueError, match="batch size"):
        enc({**obs, "proprio": obs["proprio"][:1]})


# ---- flow matching and diffusion -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", BACKBONES)
def test_decode_is_deterministic_and_differentiable_in_noise(cls):
    m = _fitted_flow(cls).freeze()
    obs, w = torch.randn(8, OBS), torch.randn(8, H, ACT)
    a1, a2 = m.decode(obs, w), m.decode(obs, w)
    assert a1.shape == (8, H, ACT) and torch.equal(a1, a2)
    assert not torch.allclose(a1, m.decode(obs, torch.randn(8, H, ACT)))
    w.requires_grad_(True)
    m.decode(obs, w).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.parameters()), "frozen backbone weights get no grads"
    g = torch.Generator().manual_seed(3)
    s1 = m.sample(obs, generator=g)
    assert s1.shape == (8, H, ACT) and torch.isfinite(s1).all()


@pytest.mark.parametrize("cls", BACKBONES)
def test_decode_rejects_wrong_noise_shape(cls):
    m = _fitted_flow(cls)
    with pytest.raises(ValueError, match=r"noise has shape"):
        m.decode(torch.randn(2, OBS), torch.randn(2, H, ACT + 1))


@pytest.mark.parametrize("cls", BACKBONES)
def test_bc_learns_an_observation_conditioned_bimodal_chunk(cls):
    """Half the demos act +s, half -s for observation s: decoded actions must land near one of the two modes
    (|a| follows the observation), and both modes must survive."""
    torch.manual_seed(0)
    n = 512
    obs = torch.rand(n, 1) + 0.5
    sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    actions = (sign * obs[:, 0])[:, None, None].expand(n, 2, 1).clone()
    m = cls(1, 1, 2, hidden=64, n_layers=2)
    m.fit_normalizers(obs, actions)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for step in range(400):
        idx = torch.randint(0, n, (128,))
        loss = m.bc_loss(obs[idx], actions[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first
    m.eval()
    with torch.no_grad():
        test_obs = torch.full((400, 1), 1.2)
        a = m.sample(test_obs, generator=torch.Generator().manual_seed(1))[:, 0, 0]
    err = (a.abs() - 1.2).abs()
    assert err.median() < 0.15, f"decoded |a| should be near 1.2, median error {err.median():.3f}"
    assert 0.2 < (a > 0).float().mean() < 0.8, "both modes survive"


@pytest.mark.parametrize("cls", BACKBONES)
def test_image_backbone_decodes_and_bc_loss_backprops_into_cnn(cls):
    torch.manual_seed(0)
    m = cls(6, ACT, H, obs_type="image", hidden=64, n_layers=2)
    obs = _image_obs(b=4)
    m.fit_normalizers(obs, torch.randn(4, H, ACT))
    loss = m.bc_loss(obs, torch.randn(4, H, ACT))
    loss.backward()
    assert m.encoder.cnn[0].weight.grad.abs().sum() > 0
    assert m.decode(obs, torch.randn(4, H, ACT)).shape == (4, H, ACT)
    assert m.obs_spec()["rgb"] == {"shape": [3, 84, 84], "dtype": "uint8"}


def test_diffusion_schedule_and_ddim_steps():
    for schedule in ("cosine", "linear"):
        acp = make_alphas_cumprod(100, schedule)
        assert acp.shape == (100,) and (acp[1:] < acp[:-1]).all() and acp[0] > 0.99 and acp[-1] < 0.01
    m = DiffusionPolicy(OBS, ACT, H, num_steps=10, num_train_steps=100)
    assert m.ddim_timesteps.tolist()[0] == 99 and m.ddim_timesteps.tolist()[-1] == 0
    assert len(set(m.ddim_timesteps.tolist())) == 10
    with pytest.raises(ValueError, match="cannot exceed"):
        DiffusionPolicy(OBS, ACT, H, num_steps=200, num_train_steps=100)


# ---- checkpoints -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", BACKBONES)
def test_checkpoint_round_trip_and_metadata(tmp_path, cls):
    m = _fitted_flow(cls).eval()
    path = save_backbone(m, tmp_path / "base.safetensors", extra={"task": "toy"})
    loaded = load_backbone(path, expect={"task": "toy", "kind": cls.kind, "obs_type": "state"})
    assert type(loaded) is cls and loaded.config == m.config
    obs, w = torch.randn(3, OBS), torch.randn(3, H, ACT)
    assert torch.equal(loaded.decode(obs, w), m.decode(obs, w))
    meta = read_metadata(path)
    assert meta["action_spec"]["horizon"] == H and meta["obs_spec"]["state"]["shape"] == [OBS]


def test_checkpoint_errors_are_clear(tmp_path):
    m = _fitted_flow()
    path = save_backbone(m, tmp_path / "base.safetensors", extra={"task": "pick_place"})
    with pytest.raises(CheckpointError, match="no backbone checkpoint"):
        load_backbone(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="task='pick_place' but 'mug_hang' was expected"):
        load_backbone(path, expect={"task": "mug_hang"})
    data = path.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_backbone(trunc)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_backbone(garbage)
    # same class, different architecture in the header than in the weights
    other = FlowMatchingPolicy(OBS, ACT, H, hidden=32, n_layers=2)
    other_path = save_backbone(other, tmp_path / "other.safetensors")
    import json
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(str(other_path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["lpds_backbone"])
    meta["config"]["hidden"] = 64
    save_file(tensors, str(other_path), metadata={"lpds_backbone": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="does not match FlowMatchingPolicy"):
        load_backbone(other_path)
