"""Weight remapping: w = w_remapped·scales exactly (to float rounding), max|w_remapped| honoured."""

from __future__ import annotations

import pytest
import torch

from analogkit.inference.remap import REMAP_TYPES, WeightRemap, remap_scales, remap_weights


def weights(shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # columns of very different magnitudes, so per-column and per-layer scales differ
    return torch.randn(shape, generator=g) * torch.logspace(-2, 1, shape[-2]).unsqueeze(-1)


@pytest.mark.parametrize("kind", REMAP_TYPES)
@pytest.mark.parametrize("shape", [(8, 5), (3, 8, 5)])
@pytest.mark.parametrize("wmax", [1.0, 0.3])
def test_reconstruction(kind, shape, wmax):
    w = weights(shape)
    w_r, s = remap_weights(w, WeightRemap(type=kind, remapped_wmax=wmax))
    assert w_r.shape == w.shape
    torch.testing.assert_close(w_r * s, w, rtol=2e-7, atol=0)  # 1–2 float32 roundings


@pytest.mark.parametrize("shape", [(8, 5), (3, 8, 5)])
def test_layerwise_max(shape):
    w = weights(shape)
    w_r, s = remap_weights(w, WeightRemap(type="layerwise_symmetric", remapped_wmax=0.5))
    assert s.shape == (1,) * len(shape)
    assert float(w_r.abs().max()) == pytest.approx(0.5, rel=1e-7)
    assert float(s.reshape(())) == pytest.approx(float(w.abs().max()) / 0.5)


@pytest.mark.parametrize("shape", [(8, 5), (3, 8, 5)])
def test_channelwise_max(shape):
    w = weights(shape)
    w_r, s = remap_weights(w, WeightRemap(type="channelwise_symmetric", remapped_wmax=1.0))
    assert s.shape == tuple(shape[:-1]) + (1,)
    torch.testing.assert_close(w_r.abs().amax(dim=-1), torch.ones(shape[:-1]), rtol=1e-7, atol=0)
    assert float(w_r.abs().max()) <= 1.0  # never above the range, even with rounding


def test_none():
    w = weights((4, 3))
    w_r, s = remap_weights(w, WeightRemap())
    assert w_r is w and torch.equal(s, torch.ones(1, 1))


def test_zero_columns_keep_unit_scale():
    w = weights((4, 3))
    w[1] = 0
    w_r, s = remap_weights(w, WeightRemap(type="channelwise_symmetric"))
    assert float(s[1]) == 1.0 and torch.equal(w_r[1], torch.zeros(3))
    z = torch.zeros(2, 2)
    assert torch.equal(remap_weights(z, WeightRemap(type="layerwise_symmetric"))[0], z)


def test_scales_carry_no_gradient():
    w = weights((4, 3)).requires_grad_(True)
    w_r, s = remap_weights(w, WeightRemap(type="channelwise_symmetric"))
    assert not s.requires_grad
    w_r.sum().backward()
    torch.testing.assert_close(w.grad, (1 / s).expand_as(w))  # d(w/s)/dw = 1/s, also at the column maxima


def test_scales_function_matches():
    w = weights((3, 6, 4))
    cfg = WeightRemap(type="channelwise_symmetric", remapped_wmax=2.0)
    assert torch.equal(remap_scales(w, cfg), remap_weights(w, cfg)[1])


@pytest.mark.parametrize(
    "kwargs,field",
    [({"type": "columnwise"}, "type"), ({"remapped_wmax": 0.0}, "remapped_wmax"), ({"remapped_wmax": -1.0}, "remapped_wmax")],
)
def test_invalid_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=rf"WeightRemap\.{field}: .* is not allowed; use"):
        WeightRemap(**kwargs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        remap_weights(torch.ones(3), WeightRemap(type="layerwise_symmetric"))
    with pytest.raises(TypeError, match="WeightRemap"):
        remap_weights(torch.ones(3, 3), "layerwise_symmetric")  # type: ignore[arg-type]
    assert WeightRemap.from_dict(WeightRemap(type="layerwise_symmetric").to_dict()) == WeightRemap(type="layerwise_symmetric")
