"""Reproduction (P1): asymmetric response functions bias Analog SGD; Tiki-Taka reaches the optimum.

Wu, Xiao, Gokmen, Fagbohungbe & Chen, "Analog in-memory training on general non-ideal resistive
elements: the impact of response functions" (NeurIPS 2025, arXiv:2502.06309), Thm. 1–2 and Cor. 1:
with a pulse response whose symmetric point is away from the optimum, Analog SGD minimises
f(W) + ⟨Σ, R(W)⟩ — an implicit penalty that pulls W towards the symmetric point, with strength set
by the gradient noise — and settles at a biased point; Tiki-Taka with a zero-shifted fast array
(reference at its symmetric point) converges to the optimum itself.

Setup (a small version of the paper's Sec. 6 least-squares experiment): a 20 → 10 linear layer on one
analog tile learns W* (entries N(0, 0.3²)) from x ~ N(0, 1), t = W*x + 0.1·ξ, mini-batches of 16,
loss ½‖Wx − t‖², lr 0.1, 1500 steps, W starting at 0; ideal periphery (the update is the only
non-ideality). Devices: soft bounds on [−1, 1], 2000 states (dw_min 0.001), no device-to-device
variation, whose up/down asymmetry ``up_down`` = c puts the symmetric point at cτ/(2 − c)
(the "generalised linear" response of P1, App. B). Analog SGD trains one such array. Tiki-Taka
(TransferCompound, γ = 0.4 as in the paper's toy) has the same device for the slow array C and a
fast array A of the same device read against a reference at its symmetric point; every column of
A is transferred each step (transfer lr 0.1·lr). Reported: relative weight error ‖W − W*‖/‖W*‖,
averaged over the last 200 steps and over seeds.

    python examples/response_functions.py [--seeds 3] [--steps 1500]

Writes examples/output/response_functions.csv and .png.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

import analogkit
from analogkit.compounds import TransferCompound
from analogkit.config import IOConfig, TileConfig
from analogkit.devices import SoftBoundsReferenceDevice
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD

OUTPUT = Path(__file__).resolve().parent / "output"
ASYMMETRIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def device(asymmetry: float, zero_shifted: bool = False, dw_min: float = 0.001) -> SoftBoundsReferenceDevice:
    """Soft bounds on [−1, 1] with up/down asymmetry c; optionally read against its symmetric point."""
    return SoftBoundsReferenceDevice(
        dw_min=dw_min, up_down=asymmetry, w_max=1.0, w_min=-1.0, dw_min_std=0.0,
        dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
        subtract_symmetry_point=zero_shifted,
    )


def symmetric_point(asymmetry: float) -> float:
    """Where up and down steps balance for ``device(asymmetry)``: cτ/(2 − c) with τ = 1."""
    return asymmetry / (2.0 - asymmetry)


def tile_config(algorithm: str, asymmetry: float, n_reads: int = 20, gamma: float = 0.4) -> TileConfig:
    io = IOConfig.perfect()
    if algorithm == "analog-sgd":
        return TileConfig(forward=io, backward=io, device=device(asymmetry))
    if algorithm == "tiki-taka":
        return TileConfig(forward=io, backward=io, device=TransferCompound(
            unit_cell_devices=[device(asymmetry, zero_shifted=True), device(asymmetry)],
            gamma=gamma, transfer_every=1.0, n_reads_per_transfer=n_reads, fast_lr=1.0, transfer_lr=0.1,
            transfer_forward=io,
        ))
    raise ValueError(f"algorithm: {algorithm!r} is not allowed; use 'analog-sgd' or 'tiki-taka'")


def run(algorithm: str, asymmetry: float, seed: int = 0, steps: int = 1500, n_in: int = 20, n_out: int = 10,
        batch: int = 16, lr: float = 0.1, noise: float = 0.1, tail: int = 200) -> float:
    """Final relative weight error ‖W − W*‖/‖W*‖ (mean over the last ``tail`` steps)."""
    analogkit.manual_seed(seed)
    data = torch.Generator().manual_seed(1000 + seed)
    w_star = 0.3 * torch.randn(n_out, n_in, generator=data)
    cfg = tile_config(algorithm, asymmetry, n_reads=n_in)
    layer = AnalogLinear(n_in, n_out, bias=False, config=cfg)
    layer.set_weight(torch.zeros(n_out, n_in))
    opt = AnalogSGD(layer.parameters(), lr=lr)
    errors = []
    for k in range(steps):
        x = torch.randn(batch, n_in, generator=data)
        t = x @ w_star.t() + noise * torch.randn(batch, n_out, generator=data)
        opt.zero_grad()
        (0.5 * (layer(x) - t).pow(2).sum(dim=1).mean()).backward()
        opt.step()
        if k >= steps - tail:
            with torch.no_grad():
                w = layer.tile.config.device.apparent_weight(layer.tile.device_state)[0]
                errors.append(float((w - w_star).norm() / w_star.norm()))
    return sum(errors) / len(errors)


def sweep(asymmetries=ASYMMETRIES, seeds: int = 3, steps: int = 1500) -> list[dict]:
    rows = []
    for c in asymmetries:
        row = {"asymmetry": c, "symmetric_point": symmetric_point(c)}
        for alg in ("analog-sgd", "tiki-taka"):
            errs = torch.tensor([run(alg, c, seed=s, steps=steps) for s in range(seeds)])
            row[f"{alg}_mean"] = float(errs.mean())
            row[f"{alg}_std"] = float(errs.std()) if seeds > 1 else 0.0
        rows.append(row)
        print(f"  c = {c:.1f}: analog SGD {row['analog-sgd_mean']:.4f}, Tiki-Taka {row['tiki-taka_mean']:.4f}", flush=True)
    return rows


def save(rows: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "response_functions.csv", out / "response_functions.png"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    c = [r["asymmetry"] for r in rows]
    for alg, label, marker in (("analog-sgd", "Analog SGD", "o"), ("tiki-taka", "Tiki-Taka (γ = 0.4)", "s")):
        ax.errorbar(c, [r[f"{alg}_mean"] for r in rows], yerr=[r[f"{alg}_std"] for r in rows],
                    marker=marker, capsize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("device asymmetry c (symmetric point cτ/(2 − c))")
    ax.set_ylabel("final ‖W − W*‖ / ‖W*‖")
    ax.set_title("Least squares, soft-bounds devices (Wu et al. 2025)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=130)
    plt.close(fig)
    return csv_path, png_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    print(f"least squares 20 → 10, {args.steps} steps, {args.seeds} seeds; relative weight error (mean ± std)")
    rows = sweep(seeds=args.seeds, steps=args.steps)
    print()
    print(f"{'asymmetry c':>11} {'sym. point':>10} {'Analog SGD':>17} {'Tiki-Taka':>17} {'TT / SGD':>9}")
    for r in rows:
        print(f"{r['asymmetry']:>11.1f} {r['symmetric_point']:>10.3f} "
              f"{r['analog-sgd_mean']:>9.4f} ± {r['analog-sgd_std']:.4f} {r['tiki-taka_mean']:>9.4f} ± {r['tiki-taka_std']:.4f} "
              f"{r['tiki-taka_mean'] / r['analog-sgd_mean']:>9.2f}")
    csv_path, png_path = save(rows, args.output)
    print(f"\nwrote {csv_path} and {png_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
