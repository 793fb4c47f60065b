"""Reference experiment: accuracy over time on a PCM inference chip, digital vs hardware-aware training.

A small model on the bundled digits data (an MLP 64-16-10 by default, or LeNet-5) is trained (1)
digitally and (2) with hardware-aware training
(HWA: multiplicative weight noise, clipping, noisy forward pass, column-wise weight scaling; the
recipe of Rasch et al. 2023, Nat. Commun. 14:5282, scaled down). Both are programmed on PCM
(Nandakumar et al. 2019 statistics: programming noise, conductance-dependent drift, 1/f read noise)
and evaluated at 1 s, 1 h, 1 day, 1 month and 1 year after programming, with and without global
drift compensation, over several programming repeats.

    python examples/pcm_drift_digits.py [--model mlp|lenet] [--repeats 10] [--epochs 20]
                                         [--noise-scale 4] [--out examples/output]

The default chip is a noisy one (PCM programming and read noise ×4), where the benefit of HWA
training is large on this small problem. Prints a table and saves ``pcm_drift_digits.png`` and
``.csv`` in the output folder (under a minute on 2 cores with the MLP).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import analogkit  # noqa: E402
from analogkit.analysis import evaluate_over_time  # noqa: E402
from analogkit.config import IOConfig, MappingConfig, TileConfig  # noqa: E402
from analogkit.data import digits_loaders  # noqa: E402
from analogkit.experiments import evaluate, train_epoch  # noqa: E402
from analogkit.inference import PCMLikeNoise  # noqa: E402
from analogkit.inference.clipping import WeightClip  # noqa: E402
from analogkit.inference.modifiers import WeightModifier  # noqa: E402
from analogkit.models import MLP, LeNet5  # noqa: E402
from analogkit.nn import convert_to_analog, convert_to_digital  # noqa: E402

TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0, "1 month": 30 * 86400.0, "1 year": 365 * 86400.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "lenet"], default="mlp")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--noise-scale", type=float, default=4.0, help="scale of PCM programming and read noise")
    parser.add_argument("--out", type=Path, default=Path("examples/output"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    analogkit.manual_seed(0)
    image = args.model == "lenet"
    train, test = digits_loaders(batch_size=32, image=image)

    def build() -> torch.nn.Module:
        return LeNet5(1, 10, 8) if image else MLP(64, (16,), 10)

    # the chip: 8-bit DAC/ADC, output noise, PCM noise model, column-wise weight scaling
    chip = TileConfig(
        forward=IOConfig(out_noise=0.04, inp_res=1 / 254, out_res=1 / 254, out_bound=10),
        backward=IOConfig.perfect(),
        mapping=MappingConfig(weight_scaling_omega=1.0, weight_scaling_columnwise=True),
        noise_model=PCMLikeNoise(prog_noise_scale=args.noise_scale, read_noise_scale=args.noise_scale),
    )
    hwa = chip.replace(modifier=WeightModifier(type="mult_normal", std_dev=0.3), clip=WeightClip(type="layer_gaussian", sigma=2.5))

    print("training digitally ...")
    digital = build()
    opt = torch.optim.SGD(digital.parameters(), lr=0.05, momentum=0.9)
    for _ in range(args.epochs):
        train_epoch(digital, train, opt)
    print("training hardware-aware ...")
    analogkit.manual_seed(1)
    aware = convert_to_analog(build(), hwa)
    opt = torch.optim.SGD(aware.parameters(), lr=0.05, momentum=0.9)
    for _ in range(args.epochs):
        train_epoch(aware, train, opt)
    aware = convert_to_digital(aware)

    rows = []
    for name, model in (("digital", digital), ("hardware-aware", aware)):
        software = evaluate(model, test)
        for comp in ("global", "none"):
            analogkit.manual_seed(2)
            on_chip = convert_to_analog(model, chip.replace(drift_compensation=comp))
            result = evaluate_over_time(on_chip, test, list(TIMES.values()), repeats=args.repeats)
            rows.append((name, comp, software, result))

    header = f"{'training':<15} {'compensation':<13} {'software':>9} " + " ".join(f"{k:>13}" for k in TIMES)
    print(header)
    print("-" * len(header))
    for name, comp, software, r in rows:
        cells = " ".join(f"{100 * m:6.1f} ± {100 * s:4.1f}" for m, s in zip(r.mean, r.std))
        print(f"{name:<15} {comp:<13} {100 * software:8.1f}% {cells}")

    with open(args.out / "pcm_drift_digits.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["training", "compensation", "software_accuracy", "t_seconds", "mean", "std"])
        for name, comp, software, r in rows:
            for t, m, s in zip(r.times, r.mean, r.std):
                writer.writerow([name, comp, software, t, m, s])

    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    for name, comp, _, r in rows:
        style = "-" if comp == "global" else "--"
        color = "tab:blue" if name == "digital" else "tab:red"
        ax.errorbar(r.times, [100 * m for m in r.mean], yerr=[100 * s for s in r.std], ls=style, color=color,
                    marker="o", capsize=3, label=f"{name}, {'global compensation' if comp == 'global' else 'no compensation'}")
    ax.set_xscale("log")
    ax.set_xticks(list(TIMES.values()), list(TIMES))
    ax.set_xlabel("time after programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{'LeNet-5' if image else 'MLP 64-16-10'} on digits, programmed on PCM (noise ×{args.noise_scale:g})")
    ax.legend(fontsize=8)
    fig.savefig(args.out / "pcm_drift_digits.png", dpi=120)
    print(f"wrote {args.out / 'pcm_drift_digits.png'} and .csv")


if __name__ == "__main__":
    main()
