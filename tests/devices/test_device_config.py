"""Device configs: registry, validation errors that name the field, round trips, nominal copies."""

from __future__ import annotations

import dataclasses

import pytest

import analogkit.devices as D

KINDS = list(D.DEVICES)


def test_device_registry_lists_every_family() -> None:
    assert set(KINDS) == {
        "ideal", "constant_step", "linear_step", "soft_bounds", "soft_bounds_pmax", "soft_bounds_reference",
        "exp_step", "pow_step", "pow_step_reference", "piecewise_step",
    }
    for kind, cls in D.DEVICES.items():
        assert cls.kind == kind
        assert cls.__doc__ and "Source" in cls.__doc__, kind


@pytest.mark.parametrize("kind", KINDS)
def test_device_default_config_round_trips(kind: str) -> None:
    cls = D.DEVICES.get(kind)
    dev = cls()
    assert cls.from_dict(dev.to_dict()) == dev
    assert cls.from_json(dev.to_json()) == dev
    assert D.device_from_dict(D.device_to_dict(dev)) == dev
    nominal = dev.nominal()
    for f in dataclasses.fields(nominal):
        if f.name.endswith("_dtod") or f.name in ("corrupt_devices_prob", "reference_std"):
            assert getattr(nominal, f.name) == 0, f.name


@pytest.mark.parametrize("kind", KINDS)
def test_device_negative_step_rejected(kind: str) -> None:
    cls = D.DEVICES.get(kind)
    field, bad = ("alpha", -1.0) if kind == "soft_bounds_pmax" else ("dw_min", -1.0)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.{field}: -1.0 is not allowed"):
        cls(**{field: bad})


INVALID = [
    (D.ConstantStepDevice, {"dw_min": 0.0}, "dw_min"),
    (D.ConstantStepDevice, {"dw_min_std": -0.1}, "dw_min_std"),
    (D.ConstantStepDevice, {"dw_min_dtod": -0.1}, "dw_min_dtod"),
    (D.ConstantStepDevice, {"up_down": 1.0}, "up_down"),
    (D.ConstantStepDevice, {"w_max": -0.1}, "w_max"),
    (D.ConstantStepDevice, {"w_min": 0.5}, "w_min"),
    (D.ConstantStepDevice, {"w_min": 0.0, "w_max": 0.0}, "w_min"),
    (D.ConstantStepDevice, {"corrupt_devices_prob": 1.5}, "corrupt_devices_prob"),
    (D.ConstantStepDevice, {"corrupt_devices_range": -1.0}, "corrupt_devices_range"),
    (D.ConstantStepDevice, {"lifetime": 0.5}, "lifetime"),
    (D.ConstantStepDevice, {"lifetime": -1.0}, "lifetime"),
    (D.ConstantStepDevice, {"diffusion": -0.01}, "diffusion"),
    (D.ConstantStepDevice, {"reset_std": -0.01}, "reset_std"),
    (D.ConstantStepDevice, {"enforce_consistency": 1}, "enforce_consistency"),
    (D.ConstantStepDevice, {"dw_min": float("nan")}, "dw_min"),
    (D.ConstantStepDevice, {"dw_min": "0.1"}, "dw_min"),
    (D.LinearStepDevice, {"gamma_up": -0.1}, "gamma_up"),
    (D.LinearStepDevice, {"gamma_down_dtod": -0.1}, "gamma_down_dtod"),
    (D.LinearStepDevice, {"reverse_up": True, "mult_noise": False}, "mult_noise"),
    (D.LinearStepDevice, {"write_noise_std": -1.0}, "write_noise_std"),
    (D.SoftBoundsDevice, {"reverse_offset": -0.1}, "reverse_offset"),
    (D.SoftBoundsPmaxDevice, {"p_max": 0}, "p_max"),
    (D.SoftBoundsPmaxDevice, {"range_min": 0.5}, "range_min"),
    (D.SoftBoundsPmaxDevice, {"range_min": 0.0, "range_max": 0.0}, "range_min"),
    (D.SoftBoundsReferenceDevice, {"reference_std": -0.1}, "reference_std"),
    (D.SoftBoundsReferenceDevice, {"slope_up_dtod": -0.1}, "slope_up_dtod"),
    (D.ExpStepDevice, {"dw_min_std_add": -0.1}, "dw_min_std_add"),
    (D.ExpStepDevice, {"A_up": float("inf")}, "A_up"),
    (D.PowStepDevice, {"pow_gamma": 0.0}, "pow_gamma"),
    (D.PowStepDevice, {"pow_up_down": -1.0}, "pow_up_down"),
    (D.PowStepReferenceDevice, {"n_estimation_steps": 0}, "n_estimation_steps"),
    (D.PiecewiseStepDevice, {"piecewise_up": []}, "piecewise_up"),
    (D.PiecewiseStepDevice, {"piecewise_up": [1.0, -0.5]}, "piecewise_up"),
    (D.PiecewiseStepDevice, {"piecewise_up": [0.0, 0.0], "piecewise_down": [1.0, 1.0]}, "piecewise_up"),
    (D.PiecewiseStepDevice, {"piecewise_up": [1.0, 1.0], "piecewise_down": [1.0]}, "piecewise_down"),
    (D.IdealDevice, {"bounded": "yes"}, "bounded"),
    (D.IdealDevice, {"w_min": 1.0}, "w_min"),
]


@pytest.mark.parametrize("cls,kwargs,field", INVALID, ids=[f"{c.__name__}-{f}-{i}" for i, (c, _, f) in enumerate(INVALID)])
def test_device_invalid_value_names_field(cls: type, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.{field}: .* is not allowed; "):
        cls(**kwargs)


def test_device_from_dict_rejects_unknown_and_derived_fields() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        D.SoftBoundsDevice.from_dict({"dw_min": 0.1, "gamma_up": 0.2})
    with pytest.raises(ValueError, match="unknown field"):
        D.SoftBoundsPmaxDevice.from_dict({"dw_min": 0.1})  # derived from p_max/alpha/range, not settable
    with pytest.raises(ValueError, match="kind"):
        D.device_from_dict({"dw_min": 0.1})
    with pytest.raises(ValueError, match="unknown device"):
        D.device_from_dict({"kind": "memristor9000"})


def test_device_soft_bounds_pmax_conversion() -> None:
    """Derived soft-bounds parameters: w_max = r_min + B, w_min = r_max − B, steps rate·|bound|."""
    import math

    dev = D.SoftBoundsPmaxDevice(p_max=200, alpha=0.01, range_min=-0.5, range_max=1.0)
    b = 1.5 / (1 - math.exp(-2.0))
    rate = 1 - math.exp(-0.01)
    assert dev.b_factor == pytest.approx(b)
    assert dev.w_max == pytest.approx(-0.5 + b) and dev.w_min == pytest.approx(1.0 - b)
    up, down = (-0.5 + b) * rate, (b - 1.0) * rate
    assert dev.dw_min == pytest.approx(max(up, down))
    assert dev.dw_min * (1 + min(dev.up_down, 0)) == pytest.approx(up)
    assert dev.dw_min * (1 - max(dev.up_down, 0)) == pytest.approx(down)
    changed = dev.replace(alpha=0.02)
    assert changed.dw_min != dev.dw_min  # derived values follow
