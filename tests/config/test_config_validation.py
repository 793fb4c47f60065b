"""Configs validate at construction (errors name the field and the allowed range) and round-trip."""

import json

import pytest
import yaml

from analogkit.config import IOConfig, MappingConfig, TileConfig

# (config class, field, bad value, text the message must contain)
INVALID = [
    (IOConfig, "inp_bound", 0.0, "positive"),
    (IOConfig, "inp_bound", -1.0, "positive"),
    (IOConfig, "out_bound", float("nan"), "positive"),
    (IOConfig, "inp_res", -0.1, "0 for no DAC"),
    (IOConfig, "out_res", -3, "0 for no ADC"),
    (IOConfig, "inp_noise", -0.01, ">= 0"),
    (IOConfig, "out_noise", -1.0, ">= 0"),
    (IOConfig, "w_noise", -1.0, ">= 0"),
    (IOConfig, "nm_thres", -1.0, ">= 0"),
    (IOConfig, "noise_management", "absmax", "'abs_max'"),
    (IOConfig, "bound_management", "shift", "'iterative'"),
    (IOConfig, "w_noise_type", "gauss", "'additive_constant'"),
    (IOConfig, "max_bm_factor", 0.5, ">= 1"),
    (IOConfig, "max_bm_res", 0.0, "(0, 1]"),
    (IOConfig, "max_bm_res", 2.0, "(0, 1]"),
    (IOConfig, "out_scale", 0.0, "positive"),
    (IOConfig, "ideal", "yes", "true or false"),
    (IOConfig, "inp_sto_round", 1, "true or false"),
    (IOConfig, "out_sto_round", "no", "true or false"),
    (MappingConfig, "max_input_size", -1, "positive tile input size"),
    (MappingConfig, "max_output_size", 2.5, "positive tile output size"),
    (MappingConfig, "weight_scaling_omega", -0.5, "0 for no weight scaling"),
    (MappingConfig, "digital_bias", "no", "true or false"),
    (MappingConfig, "learn_out_scaling", None, "true or false"),
    (TileConfig, "forward", {"out_noise": 0.1}, "IOConfig"),
    (TileConfig, "mapping", 3, "MappingConfig"),
]


@pytest.mark.parametrize("cls,field,value,allowed", INVALID, ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _ in INVALID])
def test_invalid_value_raises_naming_field_and_range(cls, field, value, allowed):
    with pytest.raises(ValueError) as err:
        cls(**{field: value})
    message = str(err.value)
    assert message.startswith(f"{cls.__name__}.{field}: {value!r} is not allowed")
    assert allowed in message


def test_every_io_field_is_covered_by_a_validation_case():
    covered = {f for c, f, _, _ in INVALID if c is IOConfig}
    fields = set(IOConfig().to_dict())
    assert fields - covered == set(), "add an invalid-value case for every IOConfig field"


def test_dependent_checks():
    with pytest.raises(ValueError, match=r"IOConfig.nm_thres: 0.0 is not allowed; use a positive value"):
        IOConfig(noise_management="constant", nm_thres=0.0)
    with pytest.raises(ValueError, match=r"IOConfig.w_noise_type: 'none'"):
        IOConfig(w_noise=0.02)


def test_yaml_and_json_round_trip(tmp_path):
    cfg = TileConfig(
        forward=IOConfig(out_noise=0.1, inp_res=0, noise_management="constant", nm_thres=2.0, w_noise=0.01, w_noise_type="pcm_read"),
        backward=IOConfig.perfect(),
        mapping=MappingConfig(max_input_size=256, weight_scaling_omega=0.8, weight_scaling_columnwise=True, learn_out_scaling=True),
    )
    assert TileConfig.from_yaml(cfg.to_yaml()) == cfg
    assert TileConfig.from_json(cfg.to_json()) == cfg
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"tile{suffix}"
        cfg.save(path)
        assert TileConfig.load(path) == cfg
    data = yaml.safe_load(cfg.to_yaml())
    assert json.loads(json.dumps(data)) == data  # plain data only


def test_unknown_field_is_rejected_with_the_known_fields():
    with pytest.raises(ValueError, match=r"IOConfig: unknown field\(s\) out_nosie; known fields are .*out_noise"):
        TileConfig.from_dict({"forward": {"out_nosie": 0.1}})


def test_validation_applies_when_loading_from_yaml():
    with pytest.raises(ValueError, match=r"IOConfig.out_bound: -2.0 is not allowed"):
        TileConfig.from_yaml("forward:\n  out_bound: -2.0\n")


def test_resolution_as_number_of_steps():
    # res > 1 is read as a number of steps over the full range 2·bound
    assert IOConfig(inp_res=254).inp_step == pytest.approx(2 / 254)
    assert IOConfig(out_res=1 / 254, out_bound=10).out_step == pytest.approx(20 / 254)
    assert IOConfig(out_res=0).out_step == 0
