"""Reproduction (P2): a reference offset breaks TTv2; chopped TTv2 and AGAD keep their accuracy.

Rasch, Carta, Fagbohungbe & Gokmen, "Fast and robust analog in-memory deep neural network training",
Nat. Commun. 15:7133 (2024; arXiv:2303.04721 "Fast offset corrected in-memory training"), Fig. 4–5:
TTv2 reads the gradient-accumulating array A against a reference that should sit at each device's
symmetry point; an error of that reference is a constant offset in every read, transferred into the
weights as a systematic drift. Chopped TTv2 flips the sign of the gradient written to A (and undoes
it at read-out), so the offset averages out; AGAD estimates the reference on the fly from the reads
of the previous chopper period.

Setup: the bundled 8×8 digits, an MLP 64 → 32 → 10 (ReLU) with both layers on analog tiles
(default periphery: 7-bit DAC, 9-bit ADC, output noise), batch 32, lr 0.1, 10 epochs. Devices: soft
bounds on [−1, 1] with 40 states (dw_min 0.05), 30 % device-to-device and cycle-to-cycle
variation, read against a reference at the symmetry point plus an offset drawn per device with
standard deviation σ_r (``SoftBoundsReferenceDevice(subtract_symmetry_point=True,
reference_std=σ_r)``); both arrays of a compound use this device. TTv2, c-TTv2 and AGAD are
``build_config`` with fast_lr 0.5 (auto-scaled) and auto_granularity 200 (the buffer is scaled so
that ~200 reads cross it); TTv2 is c-TTv2 without the chopper. Analog SGD (stochastic pulse
update on one array of the same devices) is the baseline.

    python examples/offsets.py [--offsets 0 0.1 0.2 0.4 0.6] [--seeds 2] [--epochs 10]

Writes examples/output/offsets.csv and .png.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

import analogkit
from analogkit.compounds import build_config
from analogkit.config import TileConfig
from analogkit.data import digits_loaders
from analogkit.devices import SoftBoundsReferenceDevice
from analogkit.experiments import evaluate, train_epoch
from analogkit.models import MLP
from analogkit.nn import convert_to_analog
from analogkit.optim import AnalogSGD

OUTPUT = Path(__file__).resolve().parent / "output"
ALGORITHMS = ("analog-sgd", "ttv2", "c-ttv2", "agad")
LABELS = {"analog-sgd": "Analog SGD", "ttv2": "TTv2", "c-ttv2": "c-TTv2", "agad": "AGAD"}
OFFSETS = (0.0, 0.1, 0.2, 0.4, 0.6)


def device(offset: float, dw_min: float = 0.05) -> SoftBoundsReferenceDevice:
    """Soft bounds on [−1, 1] read against the symmetry point plus an offset ~ N(0, offset²) per device."""
    return SoftBoundsReferenceDevice(
        dw_min=dw_min, w_max=1.0, w_min=-1.0, dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3, w_min_dtod=0.3,
        dw_min_std=0.3, subtract_symmetry_point=True, reference_std=offset,
    )


def tile_config(algorithm: str, offset: float) -> TileConfig:
    if algorithm == "analog-sgd":
        return build_config("sgd", device(offset))
    return build_config(algorithm, device(offset), fast_lr=0.5, auto_granularity=200.0)


def run(algorithm: str, offset: float, seed: int = 0, epochs: int = 10, lr: float = 0.1, batch: int = 32,
        hidden: int = 32) -> float:
    """Test accuracy on the digits after ``epochs`` epochs of on-chip training."""
    analogkit.manual_seed(seed)
    train, test = digits_loaders(batch_size=batch, seed=seed)
    model = convert_to_analog(MLP(64, hidden=(hidden,), num_classes=10), tile_config(algorithm, offset))
    opt = AnalogSGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        train_epoch(model, train, opt, progress=False)
    return evaluate(model, test)


def sweep(offsets=OFFSETS, seeds: int = 1, epochs: int = 10) -> list[dict]:
    rows = []
    for off in offsets:
        row = {"offset": off}
        for alg in ALGORITHMS:
            acc = torch.tensor([run(alg, off, seed=s, epochs=epochs) for s in range(seeds)])
            row[f"{alg}_mean"] = float(acc.mean())
            row[f"{alg}_std"] = float(acc.std()) if seeds > 1 else 0.0
        rows.append(row)
        print(f"  σ_r = {off:.2f}: " + ", ".join(f"{LABELS[a]} {row[f'{a}_mean']:.3f}" for a in ALGORITHMS), flush=True)
    return rows


def save(rows: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "offsets.csv", out / "offsets.png"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    offs = [r["offset"] for r in rows]
    for alg, marker in zip(ALGORITHMS, "osD^"):
        ax.errorbar(offs, [100 * r[f"{alg}_mean"] for r in rows], yerr=[100 * r[f"{alg}_std"] for r in rows],
                    marker=marker, capsize=3, label=LABELS[alg], linestyle="--" if alg == "analog-sgd" else "-")
    ax.set_xlabel("reference offset σ_r (weight range [−1, 1])")
    ax.set_ylabel("digits test accuracy (%)")
    ax.set_title("Reference offsets (Rasch et al. 2024)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=130)
    plt.close(fig)
    return csv_path, png_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offsets", nargs="+", type=float, default=list(OFFSETS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    print(f"digits MLP 64-32-10, {args.epochs} epochs, {args.seeds} seed(s); test accuracy")
    rows = sweep(args.offsets, seeds=args.seeds, epochs=args.epochs)
    print()
    print(f"{'σ_r':>5} " + " ".join(f"{LABELS[a]:>15}" for a in ALGORITHMS))
    for r in rows:
        cells = [f"{100 * r[f'{a}_mean']:6.1f} ± {100 * r[f'{a}_std']:4.1f}" for a in ALGORITHMS]
        print(f"{r['offset']:>5.2f} " + " ".join(f"{c:>15}" for c in cells))
    csv_path, png_path = save(rows, args.output)
    print(f"\nwrote {csv_path} and {png_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
