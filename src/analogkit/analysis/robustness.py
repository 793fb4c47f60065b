"""Accuracy of a model on analog hardware over time, and its robustness to weight noise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from analogkit.experiments.training import evaluate, progress_enabled
from analogkit.inference.lifecycle import drift, program
from analogkit.nn.base import AnalogLayer, analog_layers

Metric = Callable[[nn.Module, DataLoader], float]


@dataclass
class OverTime:
    """Metric after programming at each time: ``values[r][k]`` for repeat r at ``times[k]``."""

    times: list[float]
    values: list[list[float]]
    mean: list[float] = field(init=False)
    std: list[float] = field(init=False)

    def __post_init__(self) -> None:
        t = torch.tensor(self.values, dtype=torch.float64)
        self.mean = t.mean(0).tolist()
        self.std = (t.std(0, unbiased=True) if len(self.values) > 1 else torch.zeros(len(self.times))).tolist()

    def rows(self) -> list[dict[str, float]]:
        return [{"t_seconds": t, "mean": m, "std": s} for t, m, s in zip(self.times, self.mean, self.std)]


def evaluate_over_time(
    model: nn.Module,
    data: DataLoader,
    times: Sequence[float],
    repeats: int = 5,
    *,
    metric: Metric = evaluate,
    progress: bool | None = None,
) -> OverTime:
    """Program ``model`` ``repeats`` times; after each programming, drift to every time in
    ``times`` (seconds) and measure ``metric`` (default: accuracy) in eval mode.

    Each repeat draws new programming noise, drift exponents and read noise from the tiles'
    generators, so the spread over repeats is the chip-to-chip (programming) variation. The
    model is left programmed and drifted to the last time of the last repeat.
    """
    times = [float(t) for t in times]
    if not times or any(not (t >= 0 and math.isfinite(t)) for t in times):
        raise ValueError(f"evaluate_over_time.times: {times!r} is not allowed; use one or more times in seconds >= 0")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"evaluate_over_time.repeats: {repeats!r} is not allowed; use an integer >= 1")
    values: list[list[float]] = []
    show = progress_enabled() if progress is None else progress
    for _ in tqdm(range(repeats), desc="repeats", leave=False, disable=not show):
        program(model)
        row = []
        for t in times:
            drift(model, t)
            row.append(float(metric(model, data)))
        values.append(row)
    return OverTime(times, values)


@dataclass
class AWGNSweep:
    """Metric under additive white Gaussian weight noise: ``values[k][r]`` at ``levels[k]``."""

    levels: list[float]
    relative_to: str
    values: list[list[float]]
    mean: list[float] = field(init=False)
    std: list[float] = field(init=False)

    def __post_init__(self) -> None:
        t = torch.tensor(self.values, dtype=torch.float64)
        self.mean = t.mean(1).tolist()
        self.std = (t.std(1, unbiased=True) if t.shape[1] > 1 else torch.zeros(len(self.levels))).tolist()


def _noisy_weights(model: nn.Module, layers: str) -> Iterable[torch.Tensor]:
    if layers == "analog":
        for _, layer in analog_layers(model):
            yield layer.weight
    else:
        for module in model.modules():
            if isinstance(module, (AnalogLayer, nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                yield module.weight


@torch.no_grad()
def awgn_sweep(
    model: nn.Module,
    data: DataLoader,
    levels: Sequence[float],
    relative_to: str = "std",
    *,
    repeats: int = 3,
    layers: str = "all",
    seed: int = 0,
    metric: Metric = evaluate,
    progress: bool | None = None,
) -> AWGNSweep:
    """Noise-robustness benchmark: accuracy when every weight tensor W gets W + σ·ξ with
    σ = level·std(W) (``relative_to="std"``) or σ = level·max|W| (``"max"``), per layer.

    The additive-white-Gaussian-noise benchmark of Fagbohungbe & Qian ("Benchmarking inference
    performance of deep learning models on analog devices", 2020). ``layers`` is "all"
    (Linear/Conv, analog or not) or "analog". Noise comes from a generator seeded with
    ``seed``; weights are restored afterwards.
    """
    if relative_to not in ("std", "max"):
        raise ValueError(f"awgn_sweep.relative_to: {relative_to!r} is not allowed; use 'std' or 'max'")
    if layers not in ("all", "analog"):
        raise ValueError(f"awgn_sweep.layers: {layers!r} is not allowed; use 'all' or 'analog'")
    levels = [float(v) for v in levels]
    if not levels or any(not (v >= 0 and math.isfinite(v)) for v in levels):
        raise ValueError(f"awgn_sweep.levels: {levels!r} is not allowed; use one or more levels >= 0")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"awgn_sweep.repeats: {repeats!r} is not allowed; use an integer >= 1")
    if any(layer.tile.is_programmed for _, layer in analog_layers(model)):
        raise ValueError(
            "awgn_sweep: the model is programmed, so eval-mode passes use the programmed weights and "
            "would ignore the added noise; call analogkit.inference.clear_programming(model) first"
        )
    weights = list({id(w): w for w in _noisy_weights(model, layers)}.values())
    if not weights:
        raise ValueError("awgn_sweep: the model has no Linear/Conv weights to perturb")
    originals = [w.detach().clone() for w in weights]
    gen = torch.Generator(device=weights[0].device).manual_seed(seed)
    values: list[list[float]] = []
    show = progress_enabled() if progress is None else progress
    try:
        for level in tqdm(levels, desc="noise levels", leave=False, disable=not show):
            row = []
            for _ in range(repeats):
                for w, w0 in zip(weights, originals):
                    ref = w0.std() if relative_to == "std" else w0.abs().max()
                    w.copy_(w0 + level * ref * torch.randn(w0.shape, generator=gen, device=w0.device, dtype=w0.dtype))
                row.append(float(metric(model, data)))
            values.append(row)
    finally:
        for w, w0 in zip(weights, originals):
            w.copy_(w0)
    return AWGNSweep(levels, relative_to, values)
