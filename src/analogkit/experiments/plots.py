"""Figures of an experiment run (PNG files, drawn with matplotlib's Agg back-end).

- :func:`plot_training_curves`: training loss and test accuracy per epoch, one line per training.
- :func:`plot_over_time`: accuracy on the programmed chip versus time after programming
  (mean ± std over programming repeats), with each training's software accuracy for reference.
- :func:`plot_weight_distributions`: histograms of the crossbar weights as trained, right after
  programming, and after drift (with drift compensation), one panel per training.
- :func:`weight_snapshots`: the data for that figure, from a model with analog layers.
- The device's pulse response is :func:`analogkit.analysis.device_plots.plot_device`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from analogkit.experiments.config import time_label  # noqa: E402

__all__ = ["plot_training_curves", "plot_over_time", "plot_weight_distributions", "weight_snapshots"]

_DPI = 110


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def plot_training_curves(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Training loss (left) and test accuracy (right) per epoch for every training in ``metrics``."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for name, entry in metrics["trainings"].items():
        history = entry.get("history") or []
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        label = f"{name} ({entry['mode'].replace('_', '-')})"
        ax1.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3, label=label)
        ax2.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", ms=3, label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax1.set_title("training loss")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy (%)")
    ax2.set_title("test accuracy after each epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_over_time(metrics: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Accuracy after programming versus time (log axis), mean ± std over programming repeats."""
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    all_times: list[float] = []
    for i, (name, entry) in enumerate(metrics["trainings"].items()):
        over = entry.get("over_time")
        if not over:
            continue
        color = f"C{i}"
        times = [max(t, 1e-3) for t in over["times"]]  # a log axis cannot show 0 s
        all_times = sorted(set(all_times) | set(times))
        ax.errorbar(times, [100 * m for m in over["mean"]], yerr=[100 * s for s in over["std"]], marker="o",
                    capsize=3, color=color, label=f"{name} on {entry.get('chip') or 'chip'}")
        if entry.get("test_accuracy") is not None:
            ax.axhline(100 * entry["test_accuracy"], color=color, ls=":", lw=1,
                       label=f"{name}, software (no programming)")
    ax.set_xscale("log")
    if all_times:
        ax.set_xticks(all_times, [time_label(t) for t in all_times])
        ax.minorticks_off()
    ax.set_xlabel("time after programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "accuracy on the programmed chip over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@torch.no_grad()
def weight_snapshots(model: nn.Module, t_after: float) -> dict[str, torch.Tensor]:
    """Crossbar weights of every analog layer of ``model`` (flattened, concatenated): ``trained``
    (the weight the tile programs, after digital weight scaling), ``programmed`` (right after
    programming) and ``drifted`` (``t_after`` seconds later, times the drift-compensation factor).

    Programs the model with its tiles' generators (seed them first for a repeatable figure) and
    clears the programming afterwards.
    """
    from analogkit.inference.lifecycle import clear_programming, drift, program
    from analogkit.nn.base import analog_layers

    layers = [layer for _, layer in analog_layers(model)]
    trained = []
    for layer in layers:
        tile = layer.tile
        w = tile._crossbar_weight(layer.tile_weight(), layer.bias).detach()
        scale = tile.mapping_scales(w)
        trained.append((w / scale if scale is not None else w).flatten())
    program(model)
    programmed = [layer.tile.programmed_weight.flatten().clone() for layer in layers]
    drift(model, t_after)
    drifted = []
    for layer in layers:
        tile = layer.tile
        w = tile.programmed_weight
        alpha = tile.drift_alpha
        if alpha is not None:
            w = w * (alpha.reshape(tile.groups, -1, 1) if alpha.numel() > 1 else alpha)
        drifted.append(w.flatten().clone())
    clear_programming(model)
    return {"trained": torch.cat(trained), "programmed": torch.cat(programmed), "drifted": torch.cat(drifted)}


def plot_weight_distributions(
    snapshots: Mapping[str, Mapping[str, torch.Tensor]], path: str | Path, t_after: float
) -> Path:
    """One panel per training: histograms of the crossbar weights as trained, right after
    programming, and ``t_after`` seconds later (drift-compensated)."""
    n = max(len(snapshots), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), constrained_layout=True, squeeze=False)
    labels = {"trained": "trained", "programmed": "programmed (0 s)", "drifted": f"after {time_label(t_after)} (compensated)"}
    for ax, (name, snap) in zip(axes[0], snapshots.items()):
        lo = min(float(v.min()) for v in snap.values())
        hi = max(float(v.max()) for v in snap.values())
        bins = torch.linspace(lo, hi, 61).tolist() if hi > lo else 60
        for key, style in (("trained", "stepfilled"), ("programmed", "step"), ("drifted", "step")):
            ax.hist(snap[key].float().numpy(), bins=bins, histtype=style, alpha=0.35 if style == "stepfilled" else 1.0,
                    lw=1.2, label=labels[key])
        ax.set_title(name)
        ax.set_xlabel("weight on the crossbar (after weight scaling)")
        ax.set_ylabel("count")
        ax.legend(fontsize=7)
    if not snapshots:
        axes[0][0].text(0.5, 0.5, "no training evaluated on a chip", ha="center", va="center")
        axes[0][0].set_axis_off()
    return _save(fig, path)
