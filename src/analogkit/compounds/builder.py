"""One call from (algorithm, device) to a TileConfig for on-chip training."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

from analogkit.compounds.base import Compound, is_array_device
from analogkit.compounds.chopped import ChoppedTransferCompound
from analogkit.compounds.dynamic import DynamicTransferCompound
from analogkit.compounds.mixed_precision import MixedPrecisionCompound
from analogkit.compounds.transfer import TransferCompound
from analogkit.compounds.vector import VectorUnitCell
from analogkit.config.base import Registry
from analogkit.config.io import IOConfig
from analogkit.config.tile import TileConfig
from analogkit.devices.presets import DEVICE_PRESETS
from analogkit.update.config import UpdateConfig

__all__ = ["ALGORITHMS", "ALGORITHM_BUILDERS", "build_config", "canonical_algorithm"]

#: Accepted algorithm names (lower case) → canonical name.
ALGORITHMS: dict[str, str] = {
    "sgd": "sgd",
    "mixed-precision": "mixed-precision",
    "mp": "mixed-precision",
    "tiki-taka": "tiki-taka",
    "tt": "tiki-taka",
    "ttv1": "tiki-taka",
    "ttv2": "ttv2",
    "c-ttv2": "c-ttv2",
    "chopped-ttv2": "c-ttv2",
    "ttv3": "c-ttv2",
    "agad": "agad",
    "ttv4": "agad",
}


def canonical_algorithm(name: str) -> str:
    """The canonical name of an algorithm or alias ("tt" → "tiki-taka"); ValueError if unknown."""
    if not isinstance(name, str) or name.lower() not in ALGORITHMS:
        names = ", ".join(repr(a) for a in ALGORITHMS)
        raise ValueError(f"build_config.algorithm: {name!r} is not allowed; use one of {names}")
    return ALGORITHMS[name.lower()]


def _device(device: Any) -> Any:
    if isinstance(device, str):
        return DEVICE_PRESETS.get(device)()
    if not is_array_device(device):
        raise ValueError(
            f"build_config.device: {device!r} is not allowed; use a device config (for example "
            f"SoftBoundsDevice()), a unit cell, or a device preset name ({', '.join(DEVICE_PRESETS)})"
        )
    return device


def _with(cls: type, fixed: dict[str, Any], overrides: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"build_config: unknown field(s) {', '.join(unknown)} of {cls.__name__}; "
            f"known fields are {', '.join(sorted(known))}"
        )
    return cls(**{**fixed, **overrides})


def _single_pulse() -> UpdateConfig:
    return UpdateConfig(desired_bl=1, update_bl_management=False, update_management=False)


#: One builder per canonical algorithm: (device, io, update, n_devices, overrides) → (device or compound, update).
ALGORITHM_BUILDERS = Registry("algorithm")


def _pair(dev: Any) -> list[Any]:
    return [copy.deepcopy(dev), copy.deepcopy(dev)]


def _transfer_io(io: IOConfig) -> IOConfig:
    return io.replace(noise_management="none", bound_management="none")


@ALGORITHM_BUILDERS.register("sgd")
def _sgd(dev: Any, io: IOConfig, update: UpdateConfig | None, n_devices: int, overrides: dict[str, Any]) -> tuple[Any, UpdateConfig]:
    if n_devices > 1:
        fixed = {"unit_cell_devices": [copy.deepcopy(dev) for _ in range(n_devices)], "update_policy": "single_random"}
        return _with(VectorUnitCell, fixed, overrides), update or UpdateConfig()
    if overrides:
        raise ValueError(
            f"build_config: field(s) {', '.join(sorted(overrides))} are not allowed for 'sgd' with one device "
            "(there is no compound); configure the device itself, or use n_devices > 1"
        )
    return dev, update or UpdateConfig()


@ALGORITHM_BUILDERS.register("mixed-precision")
def _mixed_precision(dev: Any, io: IOConfig, update: UpdateConfig | None, n_devices: int,
                     overrides: dict[str, Any]) -> tuple[Any, UpdateConfig]:
    return _with(MixedPrecisionCompound, {"device": dev}, overrides), update or UpdateConfig()


@ALGORITHM_BUILDERS.register("tiki-taka")
def _tiki_taka(dev: Any, io: IOConfig, update: UpdateConfig | None, n_devices: int,
               overrides: dict[str, Any]) -> tuple[Any, UpdateConfig]:
    fixed = {"unit_cell_devices": _pair(dev), "transfer_forward": _transfer_io(io),
             "transfer_update": update or UpdateConfig(), "units_in_mbatch": True}
    return _with(TransferCompound, fixed, overrides), update or UpdateConfig()


def _chopped_family(cls: type, extra: dict[str, Any], plain_read: bool = False) -> Callable[..., tuple[Any, UpdateConfig]]:
    """TTv2 / c-TTv2 / AGAD: fast lr 0.1 auto-scaled, one read per sample, single-pulse writes, BL 5."""
    def build(dev: Any, io: IOConfig, update: UpdateConfig | None, n_devices: int,
              overrides: dict[str, Any]) -> tuple[Any, UpdateConfig]:
        fixed: dict[str, Any] = {
            "unit_cell_devices": _pair(dev), "transfer_forward": io if plain_read else _transfer_io(io),
            "transfer_update": _single_pulse(), "units_in_mbatch": False, "fast_lr": 0.1, "auto_scale": True,
            **extra,
        }
        return _with(cls, fixed, overrides), update or UpdateConfig(desired_bl=5)

    return build


ALGORITHM_BUILDERS.add("ttv2", _chopped_family(ChoppedTransferCompound, {"in_chop_prob": 0.0}))
ALGORITHM_BUILDERS.add("c-ttv2", _chopped_family(ChoppedTransferCompound, {}))
ALGORITHM_BUILDERS.add("agad", _chopped_family(DynamicTransferCompound, {}, plain_read=True))


def build_config(
    algorithm: str,
    device: Any,
    *,
    io: IOConfig | None = None,
    update: UpdateConfig | None = None,
    n_devices: int = 1,
    **overrides: Any,
) -> TileConfig:
    """A :class:`TileConfig` that trains on chip with ``algorithm`` on ``device``.

    ``algorithm``: ``"sgd"`` (plain stochastic pulse update, Gokmen & Vlasov 2016),
    ``"mixed-precision"``/``"mp"`` (:class:`MixedPrecisionCompound`, Nandakumar et al. 2020),
    ``"tiki-taka"``/``"tt"``/``"ttv1"`` (:class:`TransferCompound`, Gokmen & Haensch 2020),
    ``"ttv2"`` (:class:`ChoppedTransferCompound` without choppers, Gokmen 2021),
    ``"c-ttv2"``/``"chopped-ttv2"``/``"ttv3"`` (:class:`ChoppedTransferCompound`) and
    ``"agad"``/``"ttv4"`` (:class:`DynamicTransferCompound`; both Rasch et al. 2024).

    ``device``: a device config, a unit cell, or a device preset name (``analogkit.devices.DEVICE_PRESETS``);
    transfer algorithms use two copies of it (fast and slow array). ``io``: the forward and backward
    periphery (default ``IOConfig()``); transfer reads use it with noise and bound management off
    (AGAD: as is). ``update``: the pulse update of the gradient (default ``UpdateConfig()``; for
    TTv2, c-TTv2 and AGAD BL 5). ``n_devices`` (``"sgd"`` only): devices per cross-point, in a
    :class:`VectorUnitCell` with random selection when > 1. ``overrides``: fields of the compound
    (for example ``transfer_every=2``, ``gamma=0.1``); unknown names raise ``ValueError``.

    The settings follow the incumbent's ``build_config`` (spec §1.9), except that ``"ttv2"`` uses the
    same fast-array settings as ``"c-ttv2"`` (fast_lr 0.1 with auto_scale) so the two differ only in
    the chopper; the incumbent's TTv2 uses a fixed fast lr of 1.0 without auto_scale.
    """
    alg = canonical_algorithm(algorithm)
    dev = _device(device)
    if io is not None and not isinstance(io, IOConfig):
        raise ValueError(f"build_config.io: {io!r} is not allowed; use an IOConfig or None")
    if update is not None and not isinstance(update, UpdateConfig):
        raise ValueError(f"build_config.update: {update!r} is not allowed; use an UpdateConfig or None")
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise ValueError(f"build_config.n_devices: {n_devices!r} is not allowed; use an integer >= 1")
    if n_devices > 1 and alg != "sgd":
        raise ValueError(
            f"build_config.n_devices: {n_devices} is not allowed for {alg!r}; use 1 "
            "(only 'sgd' has several devices per cross-point)"
        )
    io = IOConfig() if io is None else io
    compound, up = ALGORITHM_BUILDERS.get(alg)(dev, io, update, n_devices, dict(overrides))
    return TileConfig(forward=io, backward=io, device=compound, update=up)


def is_compound_config(config: TileConfig) -> bool:
    """Whether a tile config trains with a compound (rather than a single device)."""
    return isinstance(config.device, Compound)
