"""Weight clipping for hardware-aware training: each type's bound, in place, without autograd."""

from __future__ import annotations

import pytest
import torch

from analogkit.inference.clipping import CLIP_TYPES, WeightClip, clip_bound, clip_weights_


def heavy_tailed(shape=(3, 64, 128), seed: int = 0) -> torch.Tensor:
    """Student-t-like weights (normal / sqrt(chi²/3)), so that every bound actually clips."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g)
    chi = torch.randn((3,) + tuple(shape), generator=g).pow(2).mean(0)
    return 0.1 * z / chi.sqrt()


@pytest.mark.parametrize("shape", [(64, 128), (3, 64, 128)])
def test_fixed_value(shape):
    w = heavy_tailed(shape)
    before = w.clone()
    clip_weights_(w, WeightClip(type="fixed_value", fixed_value=0.15))
    assert float(w.abs().max()) == pytest.approx(0.15)
    inside = before.abs() <= 0.15
    assert torch.equal(w[inside], before[inside])  # untouched inside the bound
    assert torch.equal(w[~inside], 0.15 * before[~inside].sign())


@pytest.mark.parametrize("sigma", [2.0, 2.5])
def test_layer_gaussian_clips_at_sigma_std(sigma):
    w = heavy_tailed()
    bound = sigma * float(w.std())  # std over the whole layer
    before = w.clone()
    clip_weights_(w, WeightClip(type="layer_gaussian", sigma=sigma))
    assert float(w.abs().max()) == pytest.approx(bound, rel=1e-6)
    assert int((before.abs() > bound).sum()) > 0, "test data must exceed the bound"
    torch.testing.assert_close(w, before.clamp(-bound, bound))


def test_average_channel_max():
    w = heavy_tailed((2, 3, 5))
    bound = float(w.abs().amax(dim=-1).mean())  # mean over the 6 output channels of max_j |w_ij|
    before = w.clone()
    clip_weights_(w, WeightClip(type="average_channel_max"))
    torch.testing.assert_close(w, before.clamp(-bound, bound))
    assert float(w.abs().max()) == pytest.approx(bound, rel=1e-6)


def test_none_leaves_w_alone():
    w = heavy_tailed()
    before = w.clone()
    clip_weights_(w, WeightClip())
    assert torch.equal(w, before)
    assert clip_bound(w, WeightClip()) is None


def test_fixed_value_is_idempotent():
    w = heavy_tailed()
    cfg = WeightClip(type="fixed_value", fixed_value=0.1)
    clip_weights_(w, cfg)
    once = w.clone()
    clip_weights_(w, cfg)
    assert torch.equal(w, once)


@pytest.mark.parametrize("kind", ["layer_gaussian", "average_channel_max"])
def test_data_dependent_bounds_only_shrink(kind):
    """Clipping lowers std(W) and the channel maxima, so applying again never widens the range."""
    w = heavy_tailed()
    cfg = WeightClip(type=kind)
    bounds = []
    for _ in range(3):
        bounds.append(float(clip_bound(w, cfg)))
        clip_weights_(w, cfg)
        assert float(w.abs().max()) <= bounds[-1] * (1 + 1e-6)
    assert bounds[0] >= bounds[1] >= bounds[2]


@pytest.mark.parametrize("kind", CLIP_TYPES)
def test_works_on_parameters_in_place_without_autograd(kind):
    p = torch.nn.Parameter(heavy_tailed((16, 16)))
    ptr = p.data_ptr()
    clip_weights_(p, WeightClip(type=kind, fixed_value=0.05))
    assert p.data_ptr() == ptr and p.grad_fn is None and p.requires_grad


@pytest.mark.parametrize(
    "kwargs,field",
    [({"type": "channel_max_typo"}, "type"), ({"fixed_value": 0.0}, "fixed_value"), ({"fixed_value": -1.0}, "fixed_value"),
     ({"sigma": 0.0}, "sigma"), ({"sigma": float("inf")}, "sigma")],
)
def test_invalid_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=rf"WeightClip\.{field}: .* is not allowed; use"):
        WeightClip(**kwargs)


def test_config_round_trip():
    cfg = WeightClip(type="layer_gaussian", sigma=2.0)
    assert WeightClip.from_dict(cfg.to_dict()) == cfg
    assert (WeightClip().type, WeightClip().sigma) == ("none", 2.5)


def test_bad_arguments():
    with pytest.raises(TypeError, match="WeightClip"):
        clip_weights_(torch.ones(2, 2), {"type": "fixed_value"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        clip_weights_(torch.ones(2, 2, dtype=torch.long), WeightClip(type="fixed_value"))
