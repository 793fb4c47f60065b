"""Pulsed weight update: pulse trains, bit-length and update management, coincidence counting.

``pulsed_update_(device, state, x, d, lr, cfg, generator)`` writes ΔW = −lr·d xᵀ into an array of
devices as pulses (stochastic parallel update, Gokmen & Vlasov 2016), sample by sample, with the
device's own step physics; :class:`UpdateConfig` holds the settings. Two back-ends with the same
semantics: a plain-PyTorch reference (any device, CPU/CUDA) and fused numba kernels (CPU:
affine-step and ideal devices in :mod:`analogkit.update.kernels`, exp-, pow- and piecewise-step
devices in :mod:`analogkit.update.kernels_step`), chosen by ``UpdateConfig.backend``.

The engine (and with it numba) is imported on first use, so that configs can import
:class:`UpdateConfig` cheaply and without import cycles.
"""

from __future__ import annotations

from typing import Any

from analogkit.update.config import (
    BACKENDS,
    PULSE_APPLICATIONS,
    PULSE_TYPES,
    UpdateConfig,
)

_LAZY = {
    "UpdateStats": "analogkit.update.engine",
    "pulsed_update_": "analogkit.update.engine",
    "select_backend": "analogkit.update.engine",
    "TrainPlan": "analogkit.update.trains",
    "coincidence_counts": "analogkit.update.trains",
    "plan_trains": "analogkit.update.trains",
    "probabilities": "analogkit.update.trains",
}

__all__ = [  # noqa: RUF022 (grouped: config, then the lazily imported engine)
    "BACKENDS",
    "PULSE_APPLICATIONS",
    "PULSE_TYPES",
    "UpdateConfig",
    "UpdateStats",
    "pulsed_update_",
    "select_backend",
    "TrainPlan",
    "coincidence_counts",
    "plan_trains",
    "probabilities",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analogkit.update' has no attribute {name!r}")
