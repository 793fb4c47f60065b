"""Inference on analog hardware: weights → conductances, programming noise, drift, read noise.

Pieces (pure functions and config dataclasses; the tile calls them):

- ``converters``: how a weight is stored on devices (single pair, dual pair, N pairs with
  significance factors, single device); ``CONVERTERS`` registry.
- ``base``: the :class:`NoiseModel` interface, the saveable :class:`ProgrammedState`,
  ``NOISE_MODELS`` registry.
- ``pcm``: :class:`PCMLikeNoise` (``"pcm"``), :class:`CustomDriftPCMNoise` (``"pcm_custom_drift"``).
- ``state_independent``: :class:`StateIndependentNoise` (``"state_independent"``).
- ``reram``: :class:`ReRAMPolynomialNoise` (``"reram_wan2022"``), :class:`ReRAMCMONoise` (``"reram_cmo"``).
- ``compensation``: global / per-column drift-compensation factors.

Typical use (the tile does this for you)::

    model = PCMLikeNoise()
    state = model.program(w, generator)                       # once
    w_1h = model.drifted_weights(state, 3600.0, generator)    # at any time after programming

Your own noise model: subclass :class:`NoiseModel` as a dataclass, give it a ``kind``, override
the hooks you need (``programming_noise``, ``drift_exponents``, ``drift``, ``read_noise``; or
``conductance_at`` for another time evolution), and register it. It then serialises inside
configs (``to_dict``/``from_dict`` with its ``kind``) and is picked up by the registry tests.

>>> from dataclasses import dataclass
>>> import torch
>>> from analogkit.inference import NOISE_MODELS, NoiseModel, randn
>>> @dataclass
... class ConstantDriftNoise(NoiseModel):
...     '''Gaussian programming noise of fixed std (µS) and one drift exponent for all devices.
...
...     g_prog = max(g_T + prog_std·ξ, 0);  g(t) = g_prog·((t + t_0)/t_0)^(−nu).
...     '''
...     kind = "constant_drift_example"
...     prog_std: float = 0.5
...     nu: float = 0.05
...     t_0: float = 20.0
...
...     def validate(self):
...         super().validate()
...         self.check_range("prog_std", 0)
...         self.check_range("nu", 0)
...         self.check_range("t_0", 0, lo_open=True)
...
...     def programming_noise(self, g, generator):
...         return (g + self.prog_std * randn(g, generator)).clamp(min=0)
...
...     def drift_exponents(self, g, generator):
...         return torch.full_like(g, self.nu)
...
...     def drift(self, g, nu, t_inference):
...         return g * ((t_inference + self.t_0) / self.t_0) ** (-nu)
>>> NOISE_MODELS.add("constant_drift_example", ConstantDriftNoise)
>>> model = NOISE_MODELS.get("constant_drift_example")(prog_std=0.0)
>>> gen = torch.Generator().manual_seed(0)
>>> w = torch.tensor([[0.5, -1.0], [0.25, 0.0]])
>>> state = model.program(w, gen)
>>> model.drifted_weights(state, 0.0, gen)
tensor([[ 0.5000, -1.0000],
        [ 0.2500,  0.0000]])
>>> w_day = model.drifted_weights(state, 86400.0, gen)   # all devices decay by the same factor
>>> round(float(w_day[0, 1] / w[0, 1]), 4) == round(4321.0 ** -0.05, 4)
True
>>> ConstantDriftNoise.from_dict(model.to_dict()) == model
True
"""

from analogkit.inference.base import (
    NOISE_MODELS,
    NoiseModel,
    NoiselessModel,
    ProgrammedState,
    interp1d,
    polyval,
    randn,
    read_time_factor,
)
from analogkit.inference.compensation import (
    DRIFT_EPS,
    global_drift_factor,
    per_column_drift_factor,
    reference_inputs,
)
from analogkit.inference.converters import (
    CONVERTERS,
    ConductanceConverter,
    DualPairConverter,
    NPairConverter,
    SingleDeviceConverter,
    SinglePairConverter,
)
from analogkit.inference.pcm import CustomDriftPCMNoise, PCMLikeNoise
from analogkit.inference.reram import ReRAMCMONoise, ReRAMPolynomialNoise
from analogkit.inference.state_independent import StateIndependentNoise

__all__ = [
    "CONVERTERS",
    "NOISE_MODELS",
    "DRIFT_EPS",
    "ConductanceConverter",
    "SinglePairConverter",
    "NPairConverter",
    "DualPairConverter",
    "SingleDeviceConverter",
    "NoiseModel",
    "NoiselessModel",
    "ProgrammedState",
    "PCMLikeNoise",
    "CustomDriftPCMNoise",
    "StateIndependentNoise",
    "ReRAMPolynomialNoise",
    "ReRAMCMONoise",
    "global_drift_factor",
    "per_column_drift_factor",
    "reference_inputs",
    "polyval",
    "interp1d",
    "randn",
    "read_time_factor",
]

# The model-level life cycle sits above the layers (it walks a model's analog layers), so it is
# imported lazily: the tile imports this package's noise models.
_LIFECYCLE = ("program", "drift", "clear_programming")
__all__ += list(_LIFECYCLE)


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    if name in _LIFECYCLE:
        from analogkit.inference import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module 'analogkit.inference' has no attribute {name!r}")
