"""Experiment configs: defaults, YAML round-trip, one-line errors that name the key, presets."""

import pytest
import torch

from analogkit.config import TileConfig
from analogkit.experiments.config import ConfigError, ExperimentConfig, TrainingConfig, load_experiment
from analogkit.experiments.presets import (
    EXPERIMENT_PRESETS, TILE_PRESETS, algorithm_names, algorithm_presets, all_presets, build_algorithm_tile,
    build_tile_preset, preset_config,
)


def test_default_is_the_demo_with_three_modes():
    cfg = ExperimentConfig()
    assert cfg.data.name == "digits" and cfg.model.name == "mlp"
    assert [t.mode for t in cfg.trainings] == ["digital", "hardware_aware", "on_chip"]
    assert cfg.inference.times[0] == 1.0 and cfg.inference.times[-1] == 365 * 86400.0
    on_chip = cfg.trainings[2]
    assert on_chip.algorithm == ("tiki-taka" if "tiki-taka" in algorithm_names() else "sgd")
    assert on_chip.device == "reram_sb"
    assert cfg.trainings[1].resolved_tile_or_none().drift_compensation == "global"


def test_yaml_round_trip_of_the_resolved_config():
    cfg = ExperimentConfig()
    resolved = cfg.resolved()
    assert all(isinstance(t.tile, TileConfig) for t in resolved.trainings)
    again = load_experiment(resolved.to_yaml())
    assert again == resolved
    assert load_experiment(cfg.to_yaml()) == cfg  # with preset names kept as names


def test_quick_shrinks_batches_epochs_and_repeats():
    q = ExperimentConfig().quick()
    assert q.data.train_batches == 3 and q.data.test_batches == 2 and q.inference.repeats == 1
    assert all(t.epochs <= 2 for t in q.trainings)


def test_a_tile_mapping_without_kind_keeps_the_default_noise_model():
    cfg = load_experiment("trainings: [{name: a, mode: hardware_aware, tile: {noise_model: {drift_scale: 2}}}]")
    assert cfg.trainings[0].tile.noise_model.kind == "pcm"
    assert cfg.trainings[0].tile.noise_model.drift_scale == 2.0


@pytest.mark.parametrize(
    "text, start",
    [
        ("trainings: [{name: a, mode: digital, tile: nope}]", "trainings[0].tile: 'nope' is not allowed; use one of"),
        ("seed: -1", "seed: -1 is not allowed"),
        ("threads: two", "threads: 'two' is not allowed"),
        ("data: {name: mnist}", "data.root: None is not allowed"),
        ("data: {name: imagenet}", "data.name: 'imagenet' is not allowed; use one of"),
        ("model: {name: vgg}", "model.name: 'vgg' is not allowed; use one of"),
        ("trainings: [{name: a, epochs: ten}]", "trainings[0].epochs: 'ten' is not allowed; use an integer"),
        ("trainings: [{name: a, lr: 0}]", "trainings[0].lr: 0.0 is not allowed; use a learning rate > 0"),
        ("trainings: [{name: a, mode: swim}]", "trainings[0].mode: 'swim' is not allowed"),
        ("trainings: [{name: a, mode: on_chip, device: unobtainium}]", "trainings[0].device: 'unobtainium' is not allowed"),
        ("trainings: [{name: a, mode: on_chip, algorithm: magic}]", "trainings[0].algorithm: 'magic' is not allowed"),
        ("trainings: [{name: a, mode: hardware_aware}]", "trainings[0].tile: None is not allowed"),
        ("trainings: [{name: a, mode: hardware_aware, tile: {forward: {out_res: -3}}}]",
         "trainings[0].tile.forward.out_res: -3.0 is not allowed; use a positive step"),
        ("trainings: [{name: a, mode: on_chip, tile: {device: {dw_min: 0.1}}}]", "trainings[0].tile.device.kind: missing"),
        ("trainings: [{name: a}, {name: a}]", "trainings: ['a', 'a'] is not allowed"),
        ("trainings: [{name: a, over_time: maybe}]", "trainings[0].over_time: 'maybe' is not allowed"),
        ("trainings: []", "trainings: [] is not allowed"),
        ("inference: {times: [10, 1]}", "inference.times: [10.0, 1.0] is not allowed; use increasing times"),
        ("inference: {repeats: 0}", "inference.repeats: 0 is not allowed"),
        ("colour: blue", "colour: unknown key; use one of"),
        ("data: [1, 2]", "data: [1, 2] is not allowed; use a mapping"),
        ("[1, 2", "config: not valid YAML at line"),
        ("- just a list", "config: ['just a list'] is not allowed; use a mapping"),
    ],
)
def test_bad_configs_give_one_line_naming_the_key(text, start):
    with pytest.raises(ConfigError) as info:
        load_experiment(text + "\n")
    message = str(info.value)
    assert message.startswith(start), message
    assert "\n" not in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path / "nope.yaml")


def test_times_outside_a_noise_models_measured_times_are_refused():
    text = ("trainings: [{name: a, mode: hardware_aware, tile: {noise_model: {kind: reram_wan2022}}}]\n"
            "inference: {times: [1, 3600]}\n")
    with pytest.raises(ConfigError, match=r"^inference.times: \[3600.0\] is not allowed for the noise model"):
        load_experiment(text)


@pytest.mark.parametrize("name", list(TILE_PRESETS))
def test_every_tile_preset_builds_programs_and_drifts(name):
    """Each inference preset works on a small model through the whole life cycle (1 s … 1 year)."""
    from analogkit.analysis import evaluate_over_time
    from analogkit.nn import convert_to_analog

    cfg = build_tile_preset(name)
    assert TileConfig.from_yaml(cfg.to_yaml()) == cfg
    assert len(TILE_PRESETS.get(name).source) > 30
    model = convert_to_analog(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)), cfg)
    data = [(torch.randn(8, 6), torch.randint(0, 3, (8,)))]
    result = evaluate_over_time(model, data, [1.0, 365 * 86400.0], repeats=1, progress=False)
    assert len(result.mean) == 2


def test_algorithm_presets_build_pulsed_tiles():
    rows = algorithm_presets()
    assert rows and all(r.kind == "algorithm" and "/" in r.name and len(r.source) > 20 for r in rows)
    for algorithm in algorithm_names():
        tile = build_algorithm_tile(algorithm, "reram_sb")
        assert tile.device is not None


def test_presets_list_every_kind_once_and_show_as_config():
    rows = all_presets()
    kinds = {r.kind for r in rows}
    assert kinds == {"device", "algorithm", "inference", "experiment"}
    names = [(r.kind, r.name) for r in rows]
    assert len(names) == len(set(names))
    assert isinstance(preset_config("pcm_chip"), TileConfig)
    assert isinstance(preset_config(algorithm_presets()[0].name), TileConfig)
    assert preset_config("reram_sb").kind == "soft_bounds_reference"
    assert preset_config("demo") == EXPERIMENT_PRESETS.get("demo")()
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset_config("nope")


def test_training_mode_rules():
    with pytest.raises(ValueError, match="over_time"):
        TrainingConfig(name="d", mode="digital", tile=None, over_time=True)
    assert not TrainingConfig(name="d", mode="digital").resolved().over_time
    assert TrainingConfig(name="d", mode="digital", tile="pcm_chip").resolved().over_time
    assert not TrainingConfig(name="c", mode="on_chip").resolved().over_time
    with pytest.raises(ValueError, match="tile"):
        TrainingConfig(name="c", mode="on_chip", tile="pcm_chip")
