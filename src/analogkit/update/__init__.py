"""Pulsed weight update: pulse trains, bit-length and update management, coincidence counting.

``pulsed_update_(device, state, x, d, lr, cfg, generator)`` writes ΔW = −lr·d xᵀ into an array of
devices as pulses (stochastic parallel update, Gokmen & Vlasov 2016), sample by sample, with the
device's own step physics; :class:`UpdateConfig` holds the settings. Two back-ends with the same
semantics: a plain-PyTorch reference (any device, CPU/CUDA) and a fused numba kernel (CPU,
affine-step and ideal devices), chosen by ``UpdateConfig.backend``.
"""

from analogkit.update.config import BACKENDS, PULSE_APPLICATIONS, PULSE_TYPES, UpdateConfig
from analogkit.update.engine import UpdateStats, pulsed_update_, select_backend
from analogkit.update.trains import TrainPlan, coincidence_counts, plan_trains, probabilities

__all__ = [
    "BACKENDS",
    "PULSE_APPLICATIONS",
    "PULSE_TYPES",
    "TrainPlan",
    "UpdateConfig",
    "UpdateStats",
    "coincidence_counts",
    "plan_trains",
    "probabilities",
    "pulsed_update_",
    "select_backend",
]
