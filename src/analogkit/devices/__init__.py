"""Pulsed resistive-device models: per-element state, update-once rules, d2d/c2c variation, presets.

Every device config (a validated dataclass, registered in :data:`DEVICES` by its ``kind``) builds a
:class:`DeviceState` for an array and applies pulses to it in place::

    dev = SoftBoundsDevice(dw_min=0.01)               # or build_preset("reram_sb")
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((out, in), gen)
    dev.pulse_n(state, counts, gen)                     # counts: signed integer tensor
    w_read = dev.apparent_weight(state)

Presets (:data:`DEVICE_PRESETS`) are zero-argument factories of configured devices with a
``source`` citation. :func:`pulse_response` and :func:`step_curve` give data for response plots.
"""

from analogkit.devices.base import (
    DEVICES,
    PULSE_N_METHODS,
    AffineStepDevice,
    Device,
    DeviceState,
    PulsedDevice,
    register_device,
)
from analogkit.devices.constant_step import ConstantStepDevice
from analogkit.devices.exp_step import ExpStepDevice
from analogkit.devices.ideal import IdealDevice
from analogkit.devices.linear_step import LinearStepDevice
from analogkit.devices.piecewise_step import PiecewiseStepDevice
from analogkit.devices.pow_step import PowStepDevice
from analogkit.devices.pow_step_reference import PowStepReferenceDevice
from analogkit.devices.soft_bounds import SoftBoundsDevice
from analogkit.devices.soft_bounds_pmax import SoftBoundsPmaxDevice
from analogkit.devices.soft_bounds_reference import SoftBoundsReferenceDevice
from analogkit.devices.presets import DEVICE_PRESETS, build_preset, preset_source
from analogkit.devices.response import PulseResponse, StepCurve, pulse_response, step_curve


def device_from_dict(data: dict) -> Device:
    """Rebuild a device config from ``to_dict()`` data that carries a ``kind`` key."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError("device_from_dict: expected a mapping with a 'kind' key naming the device")
    return DEVICES.get(data["kind"]).from_dict(data)


def device_to_dict(device: Device) -> dict:
    """``device.to_dict()`` with its ``kind`` first, so :func:`device_from_dict` can rebuild it."""
    return {"kind": device.kind, **device.to_dict()}


__all__ = [
    "DEVICES",
    "DEVICE_PRESETS",
    "PULSE_N_METHODS",
    "AffineStepDevice",
    "ConstantStepDevice",
    "Device",
    "DeviceState",
    "ExpStepDevice",
    "IdealDevice",
    "LinearStepDevice",
    "PiecewiseStepDevice",
    "PowStepDevice",
    "PowStepReferenceDevice",
    "PulseResponse",
    "PulsedDevice",
    "SoftBoundsDevice",
    "SoftBoundsPmaxDevice",
    "SoftBoundsReferenceDevice",
    "StepCurve",
    "build_preset",
    "device_from_dict",
    "device_to_dict",
    "preset_source",
    "pulse_response",
    "register_device",
    "step_curve",
]
