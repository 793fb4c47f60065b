"""UpdateConfig: defaults of spec §1.4, validation naming the field, plain-data round trip."""

from __future__ import annotations

import pytest

from analogkit.update import UpdateConfig


def test_defaults_are_the_incumbents():
    cfg = UpdateConfig()
    assert cfg.desired_bl == 31
    assert cfg.fixed_bl is True
    assert cfg.pulse_type == "stochastic_compressed"
    assert cfg.update_bl_management is True and cfg.update_management is True
    assert cfg.um_grad_scale == 1.0
    assert cfg.x_res_implicit == 0 and cfg.d_res_implicit == 0
    assert cfg.pulse_application == "exact" and cfg.backend == "auto"
    assert UpdateConfig.kind == "update"


@pytest.mark.parametrize(
    "field, value",
    [
        ("desired_bl", 0),
        ("desired_bl", 65),
        ("desired_bl", 3.0),
        ("desired_bl", True),
        ("fixed_bl", 1),
        ("pulse_type", "stochastic"),
        ("update_bl_management", "yes"),
        ("update_management", None),
        ("um_grad_scale", 0.0),
        ("um_grad_scale", -1.0),
        ("um_grad_scale", float("nan")),
        ("x_res_implicit", -0.1),
        ("d_res_implicit", 1.5),
        ("pulse_application", "loop"),
        ("backend", "cuda"),
    ],
)
def test_invalid_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"UpdateConfig\.{field}: .* is not allowed; use"):
        UpdateConfig(**{field: value})


def test_error_text_for_bit_length():
    with pytest.raises(ValueError, match=r"UpdateConfig\.desired_bl: 0 is not allowed; use an integer >= 1"):
        UpdateConfig(desired_bl=0)


def test_round_trip_through_plain_data():
    cfg = UpdateConfig(desired_bl=7, pulse_type="mean_count", um_grad_scale=2.0, backend="torch")
    assert UpdateConfig.from_dict(cfg.to_dict()) == cfg
    assert UpdateConfig.from_yaml(cfg.to_yaml()) == cfg
