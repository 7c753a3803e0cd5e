"""Behaviour cloning: chunking of episodes and the training loop."""
import numpy as np
import pytest
import torch

from lpds_core.bc import make_chunks, train_bc
from lpds_core.diffusion import DiffusionPolicy
from lpds_core.flow_matching import FlowMatchingPolicy


def test_make_chunks_pairs_obs_with_next_actions_and_pads_with_last_action():
    ep1 = {"obs": np.arange(4)[:, None].astype(np.float32), "actions": np.arange(4)[:, None] * 10.0}
    ep2 = (np.zeros((3, 1)), np.array([[7.0], [8.0]]))  # T+1 observations: final one dropped
    obs, chunks = make_chunks([ep1, ep2], horizon=3)
    assert obs.shape == (6, 1) and chunks.shape == (6, 3, 1)
    np.testing.assert_array_equal(chunks[0, :, 0], [0, 10, 20])
    np.testing.assert_array_equal(chunks[2, :, 0], [20, 30, 30])
    np.testing.assert_array_equal(chunks[3, :, 0], [30, 30, 30])
    np.testing.assert_array_equal(chunks[5, :, 0], [8, 8, 8])


def test_make_chunks_dict_obs_and_errors():
    ep = {"obs": {"rgb": np.zeros((5, 3, 8, 8), np.uint8), "proprio": np.ones((5, 2))}, "actions": np.ones((5, 2))}
    obs, chunks = make_chunks([ep, ep], horizon=2)
    assert obs["rgb"].shape == (10, 3, 8, 8) and obs["rgb"].dtype == np.uint8 and chunks.shape == (10, 2, 2)
    with pytest.raises(ValueError, match="'obs' has 7 steps but there are 5 actions"):
        make_chunks([(np.zeros((7, 1)), np.zeros((5, 1)))], horizon=2)
    with pytest.raises(ValueError, match="at least one episode"):
        make_chunks([], horizon=2)


@pytest.mark.parametrize("cls", [FlowMatchingPolicy, DiffusionPolicy])
def test_train_bc_fits_normalisers_lowers_loss_and_calls_back(cls):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(256, 3)).astype(np.float32) * 5 + 2
    actions = np.repeat(np.tanh(obs[:, :2])[:, None, :], 4, axis=1) * 3  # (N, H=4, A=2)
    torch.manual_seed(0)
    m = cls(3, 2, 4, hidden=64, n_layers=2)
    seen = []
    steps = 300 if cls is FlowMatchingPolicy else 600  # DDPM's noise regression converges more slowly
    losses = train_bc(m, obs, actions, steps=steps, batch_size=64, lr=3e-3, progress=False,
                      callback=lambda step, loss: seen.append(step))
    assert len(losses) == steps and seen == list(range(steps))
    assert np.mean(losses[-30:]) < 0.5 * np.mean(losses[:30])
    assert m.normalizers_fitted and not m.training
    np.testing.assert_allclose(m.action_norm.high.numpy(), actions.reshape(-1, 2).max(0), rtol=1e-6)
    with torch.no_grad():
        pred = m.decode(torch.as_tensor(obs[:64]), torch.zeros(64, 4, 2))
    err = (pred - torch.as_tensor(actions[:64])).abs().mean()
    baseline = np.abs(actions[:64] - actions.mean(0)).mean()  # predicting the mean chunk
    assert err < 0.3 * baseline, f"mean abs error {err:.3f} vs {baseline:.3f} for the mean predictor"


def test_train_bc_early_stop_resume_and_bad_data():
    obs, actions = np.zeros((10, 3)), np.zeros((10, 2, 2))  # float64, as numpy makes them
    m = FlowMatchingPolicy(3, 2, 2, hidden=16, n_layers=1)
    losses = train_bc(m, obs, actions, steps=50, batch_size=4, progress=False, callback=lambda s, l: s == 4)
    assert len(losses) == 5
    more = train_bc(m, obs, actions, steps=10, start_step=5, fit_normalizers=False, progress=False)
    assert len(more) == 5
    with pytest.raises(ValueError, match="10 observations but 9 action chunks"):
        train_bc(m, obs, actions[:9], steps=1, progress=False)
    with pytest.raises(ValueError, match="never fitted"):
        train_bc(FlowMatchingPolicy(3, 2, 2), obs, actions, steps=1, fit_normalizers=False, progress=False)


def test_train_bc_image_obs():
    rng = np.random.default_rng(0)
    obs = {"rgb": rng.integers(0, 255, (16, 3, 84, 84), dtype=np.uint8),
           "depth": rng.random((16, 1, 84, 84), dtype=np.float32), "proprio": rng.normal(size=(16, 4)).astype(np.float32)}
    m = DiffusionPolicy(4, 2, 3, obs_type="image", hidden=32, n_layers=1)
    losses = train_bc(m, obs, rng.normal(size=(16, 3, 2)), steps=3, batch_size=8, progress=False)
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_random_shift_moves_images_together_and_keeps_shape_dtype_and_other_keys():
    from lpds_core.augment import random_shift

    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 255, (6, 3, 12, 12), dtype=torch.uint8)
    depth = rgb[:, :1].float() / 255.0  # the same picture in depth: one shift must move both alike
    obs = {"rgb": rgb, "depth": depth, "proprio": torch.randn(6, 5)}
    out = random_shift(obs, 2, g)
    assert out["rgb"].shape == rgb.shape and out["rgb"].dtype == torch.uint8
    assert out["depth"].dtype == torch.float32 and torch.equal(out["proprio"], obs["proprio"])
    assert torch.allclose(out["depth"], out["rgb"][:, :1].float() / 255.0, atol=1e-6)
    assert not torch.equal(out["rgb"], rgb)  # some sample moved
    for i in range(6):  # every output is the input moved by at most 2 px (the inner 8×8 block appears in it)
        inner = rgb[i, :, 2:10, 2:10]
        found = any(torch.equal(out["rgb"][i, :, r:r + 8, c:c + 8], inner) for r in range(5) for c in range(5))
        assert found
    assert torch.equal(random_shift(obs, 0, g)["rgb"], rgb)
