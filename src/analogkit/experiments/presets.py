"""Presets by name: tile configs for inference and hardware-aware training, training algorithms,
and whole experiments — the names an experiment config, ``analogkit presets`` and
``analogkit config show`` use.

- :data:`TILE_PRESETS` (kind ``inference``): zero-argument factories of :class:`TileConfig` (the
  chip a model is trained for and deployed on), each with a ``source``.
- Algorithm presets (kind ``algorithm``, named ``ALGORITHM/DEVICE``): the on-chip training tiles of
  :mod:`analogkit.compounds` (Analog SGD, Tiki-Taka and its successors, mixed precision on every
  device preset); without that package, ``sgd/DEVICE`` (Analog SGD, one device per weight).
- Device presets (kind ``device``): :data:`analogkit.devices.DEVICE_PRESETS`.
- :data:`EXPERIMENT_PRESETS` (kind ``experiment``): ``demo``, what ``analogkit run`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from analogkit.config.base import Registry
from analogkit.config.io import IOConfig
from analogkit.config.mapping import MappingConfig
from analogkit.config.tile import TileConfig
from analogkit.inference.clipping import WeightClip
from analogkit.inference.modifiers import WeightModifier
from analogkit.inference.pcm import PCMLikeNoise
from analogkit.inference.reram import ReRAMCMONoise

__all__ = [
    "TILE_PRESETS",
    "EXPERIMENT_PRESETS",
    "PresetInfo",
    "build_tile_preset",
    "algorithm_names",
    "build_algorithm_tile",
    "compounds_available",
    "default_trainings",
    "all_presets",
    "preset_config",
]

#: Zero-argument factories of tile configs (inference and HWA-training chips), by name.
TILE_PRESETS = Registry("tile preset")
#: Zero-argument factories of experiment configs, by name.
EXPERIMENT_PRESETS = Registry("experiment preset")

_RASCH2023 = "Rasch et al. 2023, Nat. Commun. 14:5282"
_NANDAKUMAR2019 = "Nandakumar et al. 2019, ICECS"
_JOSHI2020 = "Joshi et al. 2020, Nat. Commun. 11:2473"


def _register(registry: Registry, name: str, source: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def deco(fn: Callable[[], Any]) -> Callable[[], Any]:
        fn.source = source  # type: ignore[attr-defined]
        registry.add(name, fn)
        return fn

    return deco


def build_tile_preset(name: str) -> TileConfig:
    """A new :class:`TileConfig` of the tile preset ``name`` (one of :data:`TILE_PRESETS`)."""
    return TILE_PRESETS.get(name)()


# -- tile presets ------------------------------------------------------------------------------------
@_register(TILE_PRESETS, "floating_point",
           "exact floating-point matrix-vector products, no tiling, no noise: the digital reference "
           "(as AIHWKit's FloatingPointPreset)")
def floating_point() -> TileConfig:
    """Exact MVM in both directions and no noise model effects (noiseless programming)."""
    from analogkit.inference import NoiselessModel

    return TileConfig.floating_point().replace(noise_model=NoiselessModel(), drift_compensation="none")


@_register(TILE_PRESETS, "analog_default",
           "analogkit's default periphery: 7-bit DAC, 9-bit ADC, output noise 0.06, abs-max noise management, "
           "iterative bound management (AIHWKit's IOParameters defaults, Rasch et al. 2021, arXiv:2104.02184); "
           f"PCM noise model ({_NANDAKUMAR2019}), global drift compensation")
def analog_default() -> TileConfig:
    """``TileConfig()``: the default periphery in both directions, PCM noise, global drift compensation."""
    return TileConfig()


def _pcm_periphery() -> IOConfig:
    return IOConfig(inp_res=1 / 254, out_res=1 / 254, out_bound=10.0, out_noise=0.04)


@_register(TILE_PRESETS, "pcm_chip",
           "PCM inference chip: 8-bit DAC/ADC, output noise 0.04, out bound 10, column-wise weight scaling "
           f"(the periphery of the HWA benchmark of {_RASCH2023}, without IR drop); PCM programming noise, "
           f"drift and read noise ({_NANDAKUMAR2019}); global drift compensation ({_JOSHI2020})")
def pcm_chip() -> TileConfig:
    """An inference chip of PCM devices: deploy a trained model on it and read it over time."""
    return TileConfig(
        forward=_pcm_periphery(),
        backward=IOConfig.perfect(),
        mapping=MappingConfig(weight_scaling_omega=1.0, weight_scaling_columnwise=True),
        noise_model=PCMLikeNoise(),
        drift_compensation="global",
    )


@_register(TILE_PRESETS, "pcm_hwa",
           "pcm_chip for hardware-aware training: relative Gaussian weight noise (std 0.3) in every training "
           f"batch and clipping at 2.5 std per layer (the HWA recipe of {_RASCH2023}, scaled to small models; "
           f"weight noise during training as in {_JOSHI2020})")
def pcm_hwa() -> TileConfig:
    """``pcm_chip`` plus a training-time weight modifier and weight clipping."""
    return pcm_chip().replace(
        modifier=WeightModifier(type="mult_normal", std_dev=0.3),
        clip=WeightClip(type="layer_gaussian", sigma=2.5),
    )


@_register(TILE_PRESETS, "reram_cmo_chip",
           "ReRAM inference chip: the pcm_chip periphery with the conductive-metal-oxide/HfOx ReRAM statistics "
           "(Falcone et al. 2025, arXiv:2502.04524: program-and-verify noise, log-time relaxation, 1/f read noise; "
           "AIHWKit's ReRamCMONoiseModel fit), global drift compensation")
def reram_cmo_chip() -> TileConfig:
    """An inference chip of CMO/HfOx ReRAM devices (single device per weight sign, see the noise model)."""
    return pcm_chip().replace(noise_model=ReRAMCMONoise())


# -- algorithms (on-chip training) ---------------------------------------------------------------------
SGD_SOURCE = ("Analog SGD: the stochastic parallel pulse update W <- W - lr*d*x^T applied to one device "
              "per weight (Gokmen & Vlasov 2016, Front. Neurosci. 10:333)")


def _compounds() -> Any | None:
    """The compounds package if it offers ``build_config`` and ``list_presets``, else None."""
    try:
        import analogkit.compounds as compounds
    except ImportError:
        return None
    if callable(getattr(compounds, "build_config", None)) and callable(getattr(compounds, "list_presets", None)):
        return compounds
    return None


def compounds_available() -> bool:
    """Whether the compound training algorithms (Tiki-Taka, …) are installed."""
    return _compounds() is not None


@dataclass(frozen=True)
class PresetInfo:
    """One preset: its kind (``device``, ``algorithm``, ``inference``, ``experiment``), name and source."""

    kind: str
    name: str
    source: str


def _normalise(entries: Any, kind: str) -> list[PresetInfo]:
    """Rows from whatever ``list_presets()`` returns: a mapping name -> source/factory/object, a list of
    names, of (name, source) pairs, or of objects with ``name`` and ``source`` attributes."""
    out: list[PresetInfo] = []
    items = entries.items() if hasattr(entries, "items") else entries
    for item in items or ():
        if isinstance(item, str):
            name, obj = item, None
        elif isinstance(item, tuple) and len(item) >= 2:
            name, obj = item[0], item[1]
        else:
            name, obj = getattr(item, "name", str(item)), item
        source = obj if isinstance(obj, str) else getattr(obj, "source", None) or getattr(obj, "__doc__", None) or ""
        source = " ".join(str(source).split())
        out.append(PresetInfo(kind, str(name), source or "compound algorithm preset (analogkit.compounds)"))
    return out


def algorithm_names() -> list[str]:
    """Training algorithms an ``on_chip`` training may name: ``sgd``, plus the compounds' algorithms
    (canonical names first, then their aliases, e.g. ``tiki-taka`` and ``tt``)."""
    compounds = _compounds()
    if compounds is None:
        return ["sgd"]
    aliases: dict[str, str] = dict(getattr(compounds, "ALGORITHMS", {}) or {})
    canonical = list(dict.fromkeys(["sgd", *aliases.values()]))
    return canonical + [a for a in aliases if a not in canonical]


def canonical_algorithm(name: str) -> str:
    """The canonical name of an algorithm (``tt`` → ``tiki-taka``); unknown names are returned as given."""
    compounds = _compounds()
    aliases: dict[str, str] = dict(getattr(compounds, "ALGORITHMS", {}) or {}) if compounds is not None else {}
    return aliases.get(name.lower(), name)


def build_algorithm_tile(algorithm: str, device: str) -> TileConfig:
    """The tile for on-chip training with ``algorithm`` on the device preset ``device``: the
    algorithm preset ``ALGORITHM/DEVICE`` of :mod:`analogkit.compounds` where there is one, else
    ``build_config(algorithm, device)``; without the compounds, Analog SGD on one device per weight."""
    from analogkit.devices import build_preset

    compounds = _compounds()
    if compounds is None:
        if algorithm != "sgd":
            raise ValueError(f"algorithm {algorithm!r} needs analogkit.compounds, which is not installed; use 'sgd'")
        return TileConfig(device=build_preset(device))
    name = f"{canonical_algorithm(algorithm)}/{device}"
    registry = getattr(compounds, "ALGORITHM_PRESETS", None)
    if registry is not None and name in registry:
        config = registry.get(name)()
    else:
        config = compounds.build_config(algorithm, device)
    if not isinstance(config, TileConfig):
        raise TypeError(f"analogkit.compounds: the tile of {algorithm!r} on {device!r} is a "
                        f"{type(config).__name__}, not a TileConfig")
    return config


def algorithm_presets() -> list[PresetInfo]:
    """One row per algorithm preset (``ALGORITHM/DEVICE``): the compounds' ``list_presets()``, or
    ``sgd/DEVICE`` for every device preset when the compounds are not installed."""
    compounds = _compounds()
    if compounds is not None:
        return _normalise(compounds.list_presets(), "algorithm")
    from analogkit.devices import DEVICE_PRESETS

    return [PresetInfo("algorithm", f"sgd/{name}", f"{SGD_SOURCE}; device {name!r}") for name in DEVICE_PRESETS]


# -- the default experiment ----------------------------------------------------------------------------
def default_trainings() -> list[Any]:
    """The demo's three trainings: digital, hardware-aware (both evaluated on PCM over time), on-chip
    (Tiki-Taka on ReRAM when the compounds are installed, else Analog SGD)."""
    from analogkit.experiments.config import TrainingConfig

    algorithm = "tiki-taka" if "tiki-taka" in algorithm_names() else "sgd"
    return [
        TrainingConfig(name="digital", mode="digital", tile="pcm_chip", epochs=15, lr=0.05, momentum=0.9),
        TrainingConfig(name="hardware_aware", mode="hardware_aware", tile="pcm_hwa", epochs=15, lr=0.05, momentum=0.9),
        # learning rates from a small sweep on this task (Tiki-Taka 0.1-0.5, SGD 0.05-0.2)
        TrainingConfig(name=f"on_chip_{algorithm.replace('-', '_')}", mode="on_chip", algorithm=algorithm,
                       device="reram_sb", epochs=20, lr=0.3 if algorithm == "tiki-taka" else 0.1),
    ]


@_register(EXPERIMENT_PRESETS, "demo",
           "what 'analogkit run' runs: digits, MLP 64-32-10; digital vs hardware-aware training on a PCM chip "
           "read from 1 s to 1 year after programming; on-chip training on ReRAM (reram_sb)")
def demo() -> Any:
    """The default experiment (``ExperimentConfig()``)."""
    from analogkit.experiments.config import ExperimentConfig

    return ExperimentConfig()


# -- listing and showing -------------------------------------------------------------------------------
def all_presets() -> list[PresetInfo]:
    """Every preset: devices, algorithms, inference (tile) presets and experiments, one row each."""
    from analogkit.devices import DEVICE_PRESETS, preset_source

    rows = [PresetInfo("device", name, preset_source(name)) for name in DEVICE_PRESETS]
    rows += algorithm_presets()
    rows += [PresetInfo("inference", name, fn.source) for name, fn in TILE_PRESETS.items()]
    rows += [PresetInfo("experiment", name, fn.source) for name, fn in EXPERIMENT_PRESETS.items()]
    return rows


def preset_config(name: str, kind: str | None = None) -> Any:
    """The config of a preset, to print as YAML and start from: a device config, a ``TileConfig``
    (inference and algorithm presets) or an ``ExperimentConfig``."""
    from analogkit.devices import DEVICE_PRESETS, build_preset

    matches = [row for row in all_presets() if row.name == name and kind in (None, row.kind)]
    if not matches:
        raise ValueError(f"unknown preset {name!r}; use a name listed by 'analogkit presets'")
    row = matches[0]
    if row.kind == "device":
        return build_preset(name)
    if row.kind == "inference":
        return build_tile_preset(name)
    if row.kind == "experiment":
        return EXPERIMENT_PRESETS.get(name)()
    algorithm, device = name.split("/", 1)
    if device not in DEVICE_PRESETS:  # pragma: no cover - the compounds name their presets ALGORITHM/DEVICE
        raise ValueError(f"preset {name!r}: {device!r} is not a device preset")
    return build_algorithm_tile(algorithm, device)
