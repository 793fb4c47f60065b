"""Experiment configuration: data set, model, trainings to compare, evaluation over time.

An :class:`ExperimentConfig` is a validated dataclass that round-trips through YAML (the file
``analogkit run`` reads and the ``config.yaml`` it writes into every run folder)::

    name: demo
    seed: 0
    threads: 1                       # torch intra-op threads (0: PyTorch's default)
    data: {name: digits, batch_size: 32}
    model: {name: mlp, options: {hidden: [32]}}
    trainings:
      - {name: digital, mode: digital, tile: pcm_chip, epochs: 15, lr: 0.05}
      - {name: hardware_aware, mode: hardware_aware, tile: pcm_hwa, epochs: 15, lr: 0.05}
      - {name: on_chip, mode: on_chip, algorithm: sgd, device: reram_sb, epochs: 15, lr: 0.1}
    inference: {times: [1, 3600, 86400, 2592000, 31536000], repeats: 10}

Each training is one of three modes:

- ``digital``: floating-point training with ``torch.optim.SGD``; if ``tile`` is set, the trained
  model is then converted to analog layers with that config and evaluated on that chip.
- ``hardware_aware``: the model is converted to analog layers with ``tile`` and trained with
  ``torch.optim.SGD`` through the noisy forward pass (weight modifier, clipping, periphery).
- ``on_chip``: the weights are device state updated by pulses (:class:`~analogkit.optim.AnalogSGD`);
  the tile is ``tile`` if given (a config with a ``device``), else built from ``algorithm`` and
  the device preset ``device``.

``tile`` is the name of a tile preset (``analogkit presets``) or a full ``TileConfig`` mapping.
Loading a mapping with :func:`load_experiment` or :meth:`ExperimentConfig.from_dict` reports any
mistake as one line that names the key by its path, e.g.
``trainings[1].tile.forward.out_res: -3 is not allowed; use a positive step (...)``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from analogkit.config.base import _CONFIG_KINDS, ConfigBase, _from_plain
from analogkit.config.tile import TileConfig

__all__ = [
    "MODES",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TrainingConfig",
    "InferenceConfig",
    "ExperimentConfig",
    "load_experiment",
    "DEFAULT_TIMES",
    "TIME_LABELS",
    "time_label",
]

#: Training modes.
MODES = ("digital", "hardware_aware", "on_chip")

#: Seconds after programming at which the default evaluation reads the chip: 1 s … 1 year.
DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)
TIME_LABELS = {0.0: "0 s", 1.0: "1 s", 60.0: "1 min", 3600.0: "1 h", 86400.0: "1 day", 7 * 86400.0: "1 week",
               30 * 86400.0: "1 month", 365 * 86400.0: "1 year", 10 * 365 * 86400.0: "10 years"}

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def time_label(t: float) -> str:
    """A short label for a time in seconds: ``1 h``, ``1 day``, ``1 year``, else e.g. ``2.5e+04 s``."""
    if float(t) in TIME_LABELS:
        return TIME_LABELS[float(t)]
    return f"{t:g} s"


class ConfigError(ValueError):
    """An experiment config is not valid; the message is one line naming the key and what is allowed."""


# -- the dataclasses ----------------------------------------------------------------------------
@dataclass
class DataConfig(ConfigBase):
    """Which data set, read how.

    - ``name``: a registered data set (``analogkit.data.DATASETS``: digits, mnist, cifar10).
    - ``root``: folder with the files (mnist, cifar10; the digits are bundled).
    - ``batch_size``: mini-batch size for training and testing.
    - ``train_batches`` / ``test_batches``: use only the first N batches of each pass (0: all);
      ``analogkit run --quick`` sets them small.
    - ``options``: further keywords for the data set's loader (e.g. ``augment: false`` for CIFAR-10).
    """

    name: str = "digits"
    root: str | None = None
    batch_size: int = 32
    train_batches: int = 0
    test_batches: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        from analogkit.data import DATASET_INFO

        self.check_choice("name", list(DATASET_INFO))
        if self.root is not None:
            self.check_type("root", str, "use a folder path (a string) or null")
        elif DATASET_INFO.get(self.name).needs_root:
            self._fail("root", None, f"data set {self.name!r} is not bundled; use the folder that holds its files")
        self.check_int("batch_size", 1, allowed="use an integer >= 1")
        self.check_int("train_batches", 0, allowed="use an integer >= 0 (0: every batch)")
        self.check_int("test_batches", 0, allowed="use an integer >= 0 (0: every batch)")
        _check_options(self, "options")
        for key in ("batch_size", "seed", "root"):
            if key in self.options:
                self._fail("options", self.options, f"set {key!r} outside options (data.{key} or the experiment's seed)")


@dataclass
class ModelConfig(ConfigBase):
    """Which reference network.

    - ``name``: a registered model (``analogkit.models.MODELS``: mlp, lenet5, resnet20, …).
    - ``options``: keywords for the model (e.g. ``hidden: [32]`` for the MLP).
    - ``exclude``: layer-name patterns that stay digital when the model is converted to analog.
    """

    name: str = "mlp"
    options: dict[str, Any] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)

    def validate(self) -> None:
        from analogkit.models import MODELS

        self.check_choice("name", list(MODELS))
        _check_options(self, "options")
        if not isinstance(self.exclude, list) or not all(isinstance(p, str) for p in self.exclude):
            self._fail("exclude", self.exclude, "use a list of layer-name patterns (strings)")


@dataclass
class TrainingConfig(ConfigBase):
    """One way of training the model; an experiment compares several.

    - ``name``: a short identifier (letters, digits, ``_ . -``), used in file names.
    - ``mode``: ``digital``, ``hardware_aware`` or ``on_chip`` (see the module docstring).
    - ``tile``: a tile preset name or a full ``TileConfig`` mapping (the chip); null for a purely
      digital training and, in ``on_chip`` mode, to build the tile from ``algorithm`` and ``device``.
    - ``algorithm``, ``device``: the training algorithm and device preset of ``on_chip`` mode.
    - ``epochs``, ``lr``: passes over the training data and learning rate.
    - ``momentum``: SGD momentum of ordinary parameters (pulsed tiles ignore it).
    - ``over_time``: evaluate the trained model on the chip at the experiment's inference times
      (null: whenever a chip is given, except for on-chip training).
    """

    name: str = "training"
    mode: str = "digital"
    tile: str | TileConfig | None = None
    algorithm: str = "sgd"
    device: str = "reram_sb"
    epochs: int = 10
    lr: float = 0.05
    momentum: float = 0.0
    over_time: bool | None = None

    def validate(self) -> None:
        from analogkit.devices import DEVICE_PRESETS
        from analogkit.experiments.presets import TILE_PRESETS, algorithm_names

        self.check_type("name", str, "use a short name of letters, digits, '_', '.' or '-'")
        if not _NAME.match(self.name):
            self._fail("name", self.name, "use a short name of letters, digits, '_', '.' or '-'")
        self.check_choice("mode", MODES)
        if isinstance(self.tile, str):
            if self.tile not in TILE_PRESETS:
                self._fail("tile", self.tile, "use one of " + ", ".join(repr(n) for n in TILE_PRESETS)
                           + ", a TileConfig mapping, or null")
        elif self.tile is not None and not isinstance(self.tile, TileConfig):
            self._fail("tile", self.tile, "use a tile preset name, a TileConfig mapping, or null")
        self.check_type("algorithm", str, "use an algorithm name")
        algorithms = algorithm_names()
        if self.algorithm not in algorithms:
            self._fail("algorithm", self.algorithm, "use one of " + ", ".join(repr(a) for a in algorithms))
        self.check_type("device", str, "use a device preset name")
        if self.device not in DEVICE_PRESETS:
            self._fail("device", self.device, "use one of " + ", ".join(repr(d) for d in DEVICE_PRESETS))
        self.check_int("epochs", 1, allowed="use an integer >= 1")
        self.check_range("lr", 0, lo_open=True, allowed="use a learning rate > 0")
        self.check_range("momentum", 0, 1, hi_open=True, allowed="use a number in [0, 1)")
        if self.over_time is not None:
            self.check_bool("over_time")
        tile = self.resolved_tile_or_none()
        pulsed = tile is not None and tile.device is not None
        if self.mode == "digital" and pulsed:
            self._fail("tile", _short(self.tile), "use a tile without a device in digital mode (the chip it is "
                       "deployed on), or mode 'on_chip' for pulsed training")
        if self.mode == "hardware_aware":
            if tile is None:
                self._fail("tile", None, "hardware-aware training needs a tile: a preset name (for example "
                           "'pcm_hwa') or a TileConfig mapping")
            if pulsed:
                self._fail("tile", _short(self.tile), "use a tile without a device for hardware-aware training, "
                           "or mode 'on_chip' for pulsed training")
        if self.mode == "on_chip" and self.tile is not None and not pulsed:
            self._fail("tile", _short(self.tile), "use a TileConfig with a pulsed device for on-chip training, "
                       "or null to build it from 'algorithm' and 'device'")
        if self.over_time is True and self.mode == "digital" and tile is None:
            self._fail("over_time", True, "use false, or give the chip to deploy on as 'tile'")

    def resolved_tile_or_none(self) -> TileConfig | None:
        """The tile as a config: the preset expanded, or built from algorithm + device in on-chip mode."""
        from analogkit.experiments.presets import build_algorithm_tile, build_tile_preset

        if isinstance(self.tile, TileConfig):
            return self.tile
        if isinstance(self.tile, str):
            return build_tile_preset(self.tile)
        if self.mode == "on_chip":
            return build_algorithm_tile(self.algorithm, self.device)
        return None

    @property
    def evaluate_over_time(self) -> bool:
        """Whether the trained model is read on its chip over time (``over_time``, or its default)."""
        if self.over_time is not None:
            return self.over_time
        return self.mode != "on_chip" and self.tile is not None

    def resolved(self) -> "TrainingConfig":
        """A copy whose ``tile`` is a full ``TileConfig`` (or None for a purely digital training) and
        whose ``over_time`` is true or false."""
        return self.replace(tile=self.resolved_tile_or_none(), over_time=self.evaluate_over_time)


@dataclass
class InferenceConfig(ConfigBase):
    """Evaluation on the programmed chip over time.

    - ``times``: seconds after programming (default 1 s, 1 h, 1 day, 1 month, 1 year).
    - ``repeats``: programming repeats (new programming noise and drift exponents each time).
    """

    times: list[float] = field(default_factory=lambda: list(DEFAULT_TIMES))
    repeats: int = 10

    def validate(self) -> None:
        ok = isinstance(self.times, list) and len(self.times) > 0 and all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0 for t in self.times
        )
        if not ok:
            self._fail("times", self.times, "use a list of one or more times in seconds >= 0")
        self.times = [float(t) for t in self.times]
        if any(b <= a for a, b in zip(self.times[:-1], self.times[1:])):
            self._fail("times", self.times, "use increasing times")
        self.check_int("repeats", 1, allowed="use an integer >= 1")


def _default_trainings() -> list[TrainingConfig]:
    from analogkit.experiments.presets import default_trainings

    return default_trainings()


@dataclass
class ExperimentConfig(ConfigBase):
    """One experiment: data set, model, the trainings to compare and the evaluation over time.

    ``seed`` fixes everything (initial weights, data order, every tile's noise); ``threads`` sets
    PyTorch's intra-op threads for the run (0: leave PyTorch's default; 1 is fastest for small
    models). Defaults: the demo (``analogkit run`` with no arguments).
    """

    name: str = "demo"
    seed: int = 0
    threads: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(options={"hidden": [32]}))
    trainings: list[TrainingConfig] = field(default_factory=_default_trainings)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def validate(self) -> None:
        self.check_type("name", str, "use a short name")
        self.check_int("seed", 0, allowed="use an integer >= 0")
        self.check_int("threads", 0, allowed="use an integer >= 0 (0: PyTorch's default)")
        self.check_type("data", DataConfig, "use a mapping of data settings")
        self.check_type("model", ModelConfig, "use a mapping of model settings")
        self.check_type("inference", InferenceConfig, "use a mapping of inference settings")
        if not isinstance(self.trainings, list) or not self.trainings:
            self._fail("trainings", self.trainings, "use a list of one or more trainings")
        for i, t in enumerate(self.trainings):
            if not isinstance(t, TrainingConfig):
                self._fail(f"trainings[{i}]", t, "use a mapping of training settings")
        names = [t.name for t in self.trainings]
        for name in names:
            if names.count(name) > 1:
                self._fail("trainings", names, f"use a different name for each training ({name!r} repeats)")
        allowed = _time_limits(self)
        if allowed is not None:
            where, times = allowed
            bad = [t for t in self.inference.times if t not in times]
            if bad:
                raise ValueError(
                    f"ExperimentConfig.inference.times: {bad!r} is not allowed for the noise model of {where}; "
                    f"use times among {times!r}"
                )

    # -- plain data with paths in the errors -------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentConfig":  # type: ignore[override]
        """Build from plain data; any mistake raises :class:`ConfigError` naming the key's path."""
        return build(cls, data, "")

    def resolved(self) -> "ExperimentConfig":
        """A copy with every tile expanded to a full ``TileConfig`` (what the run folder records)."""
        return self.replace(trainings=[t.resolved() for t in self.trainings])

    def quick(self, train_batches: int = 3, test_batches: int = 2, epochs: int = 2) -> "ExperimentConfig":
        """A tiny version for smoke tests: few batches, at most ``epochs`` epochs, one repeat."""
        data = self.data.replace(
            train_batches=min(self.data.train_batches or train_batches, train_batches),
            test_batches=min(self.data.test_batches or test_batches, test_batches),
        )
        trainings = [t.replace(epochs=min(t.epochs, epochs)) for t in self.trainings]
        return self.replace(data=data, trainings=trainings, inference=self.inference.replace(repeats=1))


def _time_limits(cfg: ExperimentConfig) -> tuple[str, list[float]] | None:
    for t in cfg.trainings:
        if not t.evaluate_over_time:
            continue
        tile = t.resolved_tile_or_none()
        times = tile.noise_model.allowed_times if tile is not None else None
        if times is not None:
            return f"trainings {t.name!r}", list(times)
    return None


def _short(value: Any) -> Any:
    return "<TileConfig>" if isinstance(value, TileConfig) else value


def _check_options(cfg: ConfigBase, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        cfg._fail(name, value, "use a mapping of keyword names to values")


# -- a path-aware builder -----------------------------------------------------------------------
_MESSAGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_.\[\]]*): (.*)$", re.S)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _rename(message: str, cls: type, path: str) -> str:
    """``Class.field: …`` raised while building ``cls`` at ``path`` → ``path.field: …``."""
    message = _one_line(message)
    m = _MESSAGE.match(message)
    if m and m.group(1) == cls.__name__:
        return f"{_join(path, m.group(2))}: {m.group(3)}"
    if message.startswith(f"{cls.__name__}: "):
        message = message[len(cls.__name__) + 2:]
    return f"{path}: {message}" if path else message


def _config_classes(hint: Any) -> list[type[ConfigBase]]:
    origin = typing.get_origin(hint)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return [a for a in typing.get_args(hint) if isinstance(a, type) and issubclass(a, ConfigBase)]
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        return [hint]
    return []


def build(cls: type[ConfigBase], data: Any, path: str) -> Any:
    """Build the config ``cls`` from plain ``data``; errors are :class:`ConfigError` with the key path."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        where = path or "config"
        raise ConfigError(f"{where}: {_one_line(repr(data))} is not allowed; use a mapping of {cls.__name__} fields")
    data = dict(data)
    kind = data.pop("kind", None)
    if kind is not None:
        if kind not in _CONFIG_KINDS:
            kinds = sorted(k for k, c in _CONFIG_KINDS.items() if issubclass(c, cls))
            raise ConfigError(f"{_join(path, 'kind')}: {kind!r} is not allowed; use one of {', '.join(map(repr, kinds))}")
        # the registered class, even outside the hinted one (e.g. compounds where a device is hinted);
        # the enclosing config's validation says whether it fits there
        cls = _CONFIG_KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(f"{_join(path, str(key))}: unknown key; use one of {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        hint = hints.get(key, Any)
        where = _join(path, key)
        classes = _config_classes(hint)
        if classes and isinstance(value, dict):
            default = _field_default(fields[key])
            if "kind" not in value and isinstance(default, ConfigBase) and any(isinstance(default, c) for c in classes):
                # no kind given: the field's default kind (e.g. the PCM noise model of a TileConfig)
                kwargs[key] = build(type(default), value, where)
            else:
                kwargs[key] = _build_union(classes, value, where)
            continue
        if isinstance(hint, type) and issubclass(hint, ConfigBase) and not isinstance(value, hint):
            raise ConfigError(f"{where}: {_one_line(repr(value))} is not allowed; use a mapping of {hint.__name__} fields")
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is list and args and _config_classes(args[0]) and isinstance(value, list):
            inner = _config_classes(args[0])
            kwargs[key] = [
                _build_union(inner, v, f"{where}[{i}]") if isinstance(v, dict) else v for i, v in enumerate(value)
            ]
            continue
        try:
            kwargs[key] = _from_plain(hint, value, where)
        except (ValueError, TypeError) as err:
            raise ConfigError(_one_line(str(err))) from None
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(_rename(str(err), cls, path)) from None


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        try:
            return f.default_factory()  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - only a hint for the kind
            return None
    return None


def _build_union(classes: list[type[ConfigBase]], value: dict, where: str) -> Any:
    if "kind" in value:
        return build(classes[0] if len(classes) == 1 else ConfigBase, value, where)  # type: ignore[arg-type]
    if len(classes) == 1:
        kinds = sorted(k for k, c in _CONFIG_KINDS.items() if issubclass(c, classes[0]) and c is not classes[0])
        if classes[0].kind or not kinds:
            return build(classes[0], value, where)
        raise ConfigError(f"{_join(where, 'kind')}: missing; add a 'kind' key, one of {', '.join(map(repr, kinds))}")
    names = ", ".join(c.__name__ for c in classes)
    raise ConfigError(f"{_join(where, 'kind')}: missing; add a 'kind' key to choose among {names}")


def load_experiment(source: str | Path | dict[str, Any]) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a YAML file, YAML text or a mapping.

    Raises :class:`ConfigError` (one line naming the key and what is allowed) for anything wrong,
    including a missing file or invalid YAML.
    """
    if isinstance(source, dict):
        return ExperimentConfig.from_dict(source)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json"))):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist; use the path of a YAML experiment config")
        text = path.read_text()
        where = str(path)
    else:
        text, where = str(source), "config"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(f"{where}: not valid YAML{at} ({_one_line(problem)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {_one_line(repr(data))[:60]} is not allowed; use a mapping of experiment settings")
    return ExperimentConfig.from_dict(data)
