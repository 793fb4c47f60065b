"""Convert a trained model to analog layers, program it on a PCM chip and read it over a year.

A small MLP is trained digitally on the bundled digits, converted with a chip preset
(``pcm_chip`` by default: 8-bit DAC/ADC, output noise, PCM programming noise, drift and read
noise), programmed several times, and read at 1 s, 1 h, 1 day, 1 month and 1 year after
programming, with and without global drift compensation.

    python examples/convert_and_drift.py [--chip pcm_chip] [--epochs 10] [--repeats 5]

Prints one row per compensation setting (mean ± std over programmings); a few seconds on 2 cores.
"""

from __future__ import annotations

import argparse

import torch

import analogkit
from analogkit.analysis import evaluate_over_time
from analogkit.data import digits_loaders
from analogkit.experiments import evaluate, train_epoch
from analogkit.experiments.config import DEFAULT_TIMES, time_label
from analogkit.experiments.presets import TILE_PRESETS, build_tile_preset
from analogkit.models import MLP
from analogkit.nn import analog_summary, convert_to_analog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chip", choices=list(TILE_PRESETS), default="pcm_chip", help="inference preset")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="programmings per time")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small model: one thread is fastest
    analogkit.manual_seed(0)

    train, test = digits_loaders(batch_size=32)
    model = MLP(64, hidden=(32,), num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(args.epochs):
        train_epoch(model, train, opt)
    print(f"digital test accuracy: {100 * evaluate(model, test):.1f}%")

    # the same weights on analog tiles: nothing is trained again
    chip = build_tile_preset(args.chip)
    analog = convert_to_analog(model, chip)
    print(analog_summary(analog, (64,)))
    print(f"on the tiles before programming: {100 * evaluate(analog, test):.1f}%")

    print(f"{'compensation':<14}" + "".join(f"{time_label(t):>15}" for t in DEFAULT_TIMES))
    for compensation in ("global", "none"):
        analogkit.manual_seed(1)
        on_chip = convert_to_analog(model, chip.replace(drift_compensation=compensation))
        result = evaluate_over_time(on_chip, test, DEFAULT_TIMES, repeats=args.repeats)
        cells = "".join(f"{f'{100 * m:.1f} ± {100 * s:.1f}':>15}" for m, s in zip(result.mean, result.std))
        print(f"{compensation:<14}{cells}")


if __name__ == "__main__":
    main()
