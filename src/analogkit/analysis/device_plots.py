"""Figures of a pulsed device: pulse response traces and the update step versus the weight."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from analogkit.devices.base import Device  # noqa: E402
from analogkit.devices.response import pulse_response, step_curve  # noqa: E402


def plot_device(
    device: Device,
    path: str | Path,
    *,
    title: str = "",
    n_pulses: int | None = None,
    n_cycles: int = 2,
    n_traces: int = 5,
    seed: int = 0,
) -> Path:
    """Save a two-panel figure: (a) weight after each of n up then n down pulses, repeated, for
    several devices; (b) the mean step Δw per pulse (up and down) and its c2c std versus w.

    ``n_pulses`` defaults to the number of nominal steps across the weight range (≥ 10).
    """
    w_span = float(getattr(device, "w_max", 1.0)) - float(getattr(device, "w_min", -1.0))
    if n_pulses is None:
        n_pulses = max(10, min(4000, int(round(w_span / max(device.dw_min, 1e-12)))))
    resp = pulse_response(device, n_pulses=n_pulses, n_cycles=n_cycles, n_traces=n_traces, seed=seed)
    curve = step_curve(device, n_points=101, seed=seed)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    steps = resp.pulses.cumsum(0) if resp.pulses.dim() == 1 else None
    x = range(resp.w.shape[1])
    for trace in resp.w_apparent:
        ax1.plot(x, trace.numpy(), lw=0.8, alpha=0.85)
    ax1.set_xlabel("pulse number")
    ax1.set_ylabel("weight (apparent)")
    ax1.set_title(f"pulse response: {n_pulses} up, {n_pulses} down, ×{n_cycles}")
    del steps
    w = curve.w.numpy()
    ax2.plot(w, curve.mean_up.numpy(), label="mean Δw up", color="tab:red")
    ax2.plot(w, curve.mean_down.numpy(), label="mean Δw down", color="tab:blue")
    ax2.fill_between(w, (curve.mean_up - curve.std_up).numpy(), (curve.mean_up + curve.std_up).numpy(), color="tab:red", alpha=0.15)
    ax2.fill_between(w, (curve.mean_down - curve.std_down).numpy(), (curve.mean_down + curve.std_down).numpy(), color="tab:blue", alpha=0.15)
    ax2.axhline(0, color="k", lw=0.5)
    sp = float(curve.symmetry_point)
    if sp == sp:  # not NaN
        ax2.axvline(sp, color="grey", ls="--", lw=0.8, label=f"symmetry point {sp:.3g}")
    ax2.set_xlabel("weight")
    ax2.set_ylabel("update step per pulse (±1 c2c std)")
    ax2.set_title("update step vs weight")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
