"""Weight ↔ conductance converters: exact round trip, ranges, equations, validation."""

from __future__ import annotations

import pytest
import torch

from analogkit.config.base import _CONFIG_KINDS
from analogkit.inference import (
    CONVERTERS,
    DualPairConverter,
    NPairConverter,
    SingleDeviceConverter,
    SinglePairConverter,
)
from analogkit.inference.converters import GRANULARITIES


def _variants():
    """Every registered converter, with every granularity, plus non-default options."""
    out = []
    for name, cls in CONVERTERS.items():
        for gran in GRANULARITIES:
            out.append(pytest.param(cls(granularity=gran), id=f"{name}-{gran}"))
    out += [
        pytest.param(SinglePairConverter(g_max=20.0, g_min=2.0), id="single_pair-gmin"),
        pytest.param(NPairConverter(f_lst=[1.0, 2.0, 4.0], g_min=1.0), id="n_pair-3"),
        pytest.param(SingleDeviceConverter(symmetric=False), id="single_device-asym"),
        pytest.param(SingleDeviceConverter(symmetric=False, granularity="column", g_min=9.0, g_max=88.2), id="single_device-asym-col"),
    ]
    return out


SHAPES = [(7,), (6, 5), (2, 3, 4, 6)]


@pytest.mark.parametrize("conv", _variants())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_exact(conv, shape):
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(shape, generator=gen, dtype=torch.float64)
    gs, params = conv.to_conductances(w)
    assert len(gs) == conv.n_conductances
    for g in gs:
        assert g.shape == w.shape and g.dtype == w.dtype
        # conductances stay in the device range (tiny float slack)
        assert float(g.min()) >= conv.g_min - 1e-9 and float(g.max()) <= conv.g_max + 1e-9
    back = conv.from_conductances(gs, params)
    torch.testing.assert_close(back, w, rtol=1e-12, atol=1e-12)
    # float32: exact up to float32 rounding
    w32 = w.float()
    gs32, p32 = conv.to_conductances(w32)
    torch.testing.assert_close(conv.from_conductances(gs32, p32), w32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("conv", _variants())
def test_zero_weights(conv):
    w = torch.zeros(3, 4)
    gs, params = conv.to_conductances(w)
    assert all(torch.isfinite(g).all() for g in gs)
    assert all(torch.isfinite(v).all() for v in params.values())
    torch.testing.assert_close(conv.from_conductances(gs, params), w)


def test_single_pair_equation():
    # spec §1.12: s = (g_max − g_min)/max|W|, g± = clip(±sW, 0, ·) + g_min
    conv = SinglePairConverter(g_max=20.0, g_min=2.0)
    w = torch.tensor([[0.5, -1.0, 0.0], [2.0, -0.25, 1.0]], dtype=torch.float64)
    gs, params = conv.to_conductances(w)
    s = 18.0 / 2.0
    torch.testing.assert_close(params["scale"], torch.tensor(s, dtype=torch.float64))
    torch.testing.assert_close(gs[0], (s * w).clamp(min=0) + 2.0)
    torch.testing.assert_close(gs[1], (-s * w).clamp(min=0) + 2.0)
    assert float(gs[0].max()) == 20.0


def test_column_granularity_maps_each_output_to_full_range():
    conv = SinglePairConverter(granularity="column")
    w = torch.tensor([[0.1, -0.2], [3.0, 1.0], [-5.0, 0.5]])
    gs, params = conv.to_conductances(w)
    assert params["scale"].shape == (3, 1)
    top = torch.maximum(gs[0], gs[1]).amax(dim=-1)
    torch.testing.assert_close(top, torch.full((3,), 25.0))


def test_tile_granularity_per_matrix():
    conv = SinglePairConverter(granularity="tile")
    w = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    gs, params = conv.to_conductances(w)
    assert params["scale"].shape == (2, 3, 1, 1)
    top = torch.maximum(gs[0], gs[1]).amax(dim=(-2, -1))
    torch.testing.assert_close(top, torch.full((2, 3), 25.0))


def test_n_pair_fills_low_significance_first():
    conv = NPairConverter(f_lst=[1.0, 3.0])  # range 25 µS on pair 0, then 75 µS (F=3) on pair 1
    w = torch.tensor([0.1, 0.25, 0.5, 1.0, -0.2])
    gs, params = conv.to_conductances(w)
    # u = s·w with s = 4·25/1 = 100: u = 10, 25, 50, 100, −20
    torch.testing.assert_close(gs[0], torch.tensor([10.0, 25.0, 25.0, 25.0, 0.0]))
    torch.testing.assert_close(gs[1], torch.tensor([0.0, 0.0, 0.0, 0.0, 20.0]))
    torch.testing.assert_close(gs[2], torch.tensor([0.0, 0.0, 25.0 / 3, 25.0, 0.0]))
    torch.testing.assert_close(gs[3], torch.zeros(5))
    torch.testing.assert_close(conv.from_conductances(gs, params), w)


def test_dual_pair_is_two_pairs():
    conv = DualPairConverter()
    assert conv.n_conductances == 4 and conv.f_lst == [1.0, 3.0]


def test_single_device_symmetric_zero_mid_range():
    conv = SingleDeviceConverter(g_min=10.0, g_max=30.0)
    gs, _ = conv.to_conductances(torch.tensor([-2.0, 0.0, 2.0, 1.0]))
    torch.testing.assert_close(gs[0], torch.tensor([10.0, 20.0, 30.0, 25.0]))
    conv = SingleDeviceConverter(g_min=10.0, g_max=30.0, symmetric=False)
    gs, _ = conv.to_conductances(torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(gs[0], torch.tensor([10.0, 20.0, 30.0]))


def test_from_conductances_checks_inputs():
    conv = SinglePairConverter()
    gs, params = conv.to_conductances(torch.ones(2, 2))
    with pytest.raises(ValueError, match="SinglePairConverter.from_conductances: got 1"):
        conv.from_conductances(gs[:1], params)
    with pytest.raises(ValueError, match="params lack scale"):
        conv.from_conductances(gs, {})
    with pytest.raises(TypeError, match="floating-point"):
        conv.to_conductances(torch.ones(2, 2, dtype=torch.int64))


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (SinglePairConverter, {"g_max": -1.0}, "g_max"),
        (SinglePairConverter, {"g_max": 0.0}, "g_max"),
        (SinglePairConverter, {"g_min": -0.5}, "g_min"),
        (SinglePairConverter, {"g_min": 30.0}, "g_min"),
        (SinglePairConverter, {"granularity": "row"}, "granularity"),
        (NPairConverter, {"f_lst": []}, "f_lst"),
        (NPairConverter, {"f_lst": [1.0, -2.0]}, "f_lst"),
        (DualPairConverter, {"f_lst": [1.0, 2.0, 4.0]}, "f_lst"),
        (SingleDeviceConverter, {"symmetric": "yes"}, "symmetric"),
    ],
)
def test_invalid_values_name_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field}: "):
        cls(**kwargs)


@pytest.mark.parametrize("name", list(CONVERTERS))
def test_config_round_trip_and_kind(name):
    cls = CONVERTERS.get(name)
    assert cls.kind == name and _CONFIG_KINDS[name] is cls
    conv = cls(g_max=30.0, g_min=1.0, granularity="column")
    assert cls.from_dict(conv.to_dict()) == conv
    assert cls.from_yaml(conv.to_yaml()) == conv
    assert cls.from_json(conv.to_json()) == conv
