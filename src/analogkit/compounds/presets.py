"""Algorithm presets: one ready TileConfig per training algorithm × device preset.

``ALGORITHM_PRESETS`` holds a zero-argument factory per ``"<algorithm>/<device preset>"`` (for example
``"c-ttv2/reram_sb"``), each with a one-line ``source``. The periphery is the incumbent's preset
periphery (``PresetIOParameters``: 7-bit DAC, 9-bit ADC, output bound 20, output noise 0.1, abs-max
noise management, iterative bound management) and its preset update (BL 31, stochastic compressed,
BL and update management); the algorithm settings follow the incumbent's RPU-config presets (spec
§1.11). Unidirectional PCM is used as a one-sided pair with refresh every mini-batch
(``PCMPresetUnitCell``), and ``reram_sb`` with its symmetry point subtracted in the transfer
algorithms (as ``TikiTakaReRamSBPreset``), which zero-shifts the fast array.
"""

from __future__ import annotations

from typing import Any, Callable

from analogkit.compounds.builder import build_config
from analogkit.compounds.one_sided import OneSidedUnitCell
from analogkit.config.base import Registry
from analogkit.config.io import IOConfig
from analogkit.config.tile import TileConfig
from analogkit.devices.presets import DEVICE_PRESETS
from analogkit.update.config import UpdateConfig

__all__ = ["ALGORITHM_PRESETS", "PRESET_ALGORITHMS", "build_algorithm_preset", "list_presets", "preset_io"]

#: Zero-argument factories of TileConfigs, by ``"<algorithm>/<device preset>"``; each has ``source``.
ALGORITHM_PRESETS = Registry("algorithm preset")

#: Algorithms with a preset for every device preset, and what their settings follow.
PRESET_ALGORITHMS: dict[str, str] = {
    "sgd": "stochastic pulse SGD (Gokmen & Vlasov 2016, Front. Neurosci. 10:333)",
    "mixed-precision": "mixed precision (Nandakumar et al. 2020, Front. Neurosci. 14:406)",
    "tiki-taka": "Tiki-Taka v1 (Gokmen & Haensch 2020, Front. Neurosci. 14:103), transfer every mini-batch",
    "ttv2": "TTv2 (Gokmen 2021, Front. Artif. Intell. 4:699148) as c-TTv2 without choppers, fast_lr 0.5, "
            "auto_scale, auto_granularity 1000",
    "c-ttv2": "chopped TTv2 (Rasch et al. 2024, Nat. Commun. 15:7133), in_chop_prob 0.01, fast_lr 0.5, "
              "auto_scale, auto_granularity 1000",
    "agad": "AGAD (Rasch et al. 2024, Nat. Commun. 15:7133), in_chop_prob 0.02, tail_weightening 5, fast_lr 0.5, "
            "auto_scale, auto_granularity 1000",
}

_ALGORITHM_OVERRIDES: dict[str, dict[str, Any]] = {
    "sgd": {},
    "mixed-precision": {},
    "tiki-taka": {"transfer_every": 1.0},
    "ttv2": {"fast_lr": 0.5, "auto_granularity": 1000.0},
    "c-ttv2": {"in_chop_prob": 0.01, "fast_lr": 0.5, "auto_granularity": 1000.0},
    "agad": {"in_chop_prob": 0.02, "tail_weightening": 5.0, "fast_lr": 0.5, "auto_granularity": 1000.0},
}

_TRANSFER = ("tiki-taka", "ttv2", "c-ttv2", "agad")


def preset_io() -> IOConfig:
    """The incumbent's preset periphery: 7-bit DAC, 9-bit ADC, output bound 20, output noise 0.1."""
    return IOConfig(out_bound=20.0, out_noise=0.1)


def _device_for(algorithm: str, device_name: str) -> Any:
    dev = DEVICE_PRESETS.get(device_name)()
    if device_name == "pcm":
        return OneSidedUnitCell(
            unit_cell_devices=[dev], refresh_every=1, units_in_mbatch=True,
            refresh_forward=preset_io(), refresh_update=UpdateConfig(),
        )
    if algorithm in _TRANSFER and getattr(dev, "subtract_symmetry_point", True) is False:
        dev = dev.replace(subtract_symmetry_point=True)
    return dev


def _factory(algorithm: str, device_name: str) -> Callable[[], TileConfig]:
    def make() -> TileConfig:
        return build_config(
            algorithm, _device_for(algorithm, device_name), io=preset_io(),
            update=None if algorithm in ("ttv2", "c-ttv2", "agad") else UpdateConfig(),
            **_ALGORITHM_OVERRIDES[algorithm],
        )

    dev_source = DEVICE_PRESETS.get(device_name).source.split(";")[0].split(" (")[0]
    make.source = f"{PRESET_ALGORITHMS[algorithm]}; device {device_name!r}: {dev_source}"  # type: ignore[attr-defined]
    make.__name__ = f"preset_{algorithm}_{device_name}".replace("-", "_")
    make.__doc__ = f"TileConfig: {algorithm} on the {device_name!r} device preset (incumbent preset periphery)."
    return make


for _alg in PRESET_ALGORITHMS:
    for _dev in DEVICE_PRESETS:
        ALGORITHM_PRESETS.add(f"{_alg}/{_dev}", _factory(_alg, _dev))


def build_algorithm_preset(name: str) -> TileConfig:
    """A new TileConfig for the preset ``name`` (``"<algorithm>/<device preset>"``)."""
    return ALGORITHM_PRESETS.get(name)()


def list_presets() -> list[tuple[str, str]]:
    """Every algorithm preset as (name, one-line source), sorted by name."""
    return [(name, factory.source) for name, factory in ALGORITHM_PRESETS.items()]
