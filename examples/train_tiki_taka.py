"""On-chip training on a ReRAM device: Analog SGD versus Tiki-Taka.

The weights of an MLP live on pulsed devices (the ``reram_sb`` preset by default) and change only
by stochastic pulse updates. Analog SGD writes each gradient straight onto one device per weight;
Tiki-Taka (Gokmen & Haensch 2020) accumulates it on a fast array and transfers it column by column
to a slow array, which copes much better with the device's asymmetric, noisy steps.

    python examples/train_tiki_taka.py [--device reram_sb] [--epochs 20]

Prints the test accuracy after every few epochs for both algorithms (under a minute on 2 cores).
Tiki-Taka needs ``analogkit.compounds``; without it only Analog SGD runs.
"""

from __future__ import annotations

import argparse

import torch

import analogkit
from analogkit.data import digits_loaders
from analogkit.devices import DEVICE_PRESETS
from analogkit.experiments import evaluate, train_epoch
from analogkit.experiments.presets import algorithm_names, build_algorithm_tile
from analogkit.models import MLP
from analogkit.nn import convert_to_analog
from analogkit.optim import AnalogSGD

# learning rates from a small sweep on this task and device
LEARNING_RATES = {"sgd": 0.1, "tiki-taka": 0.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=list(DEVICE_PRESETS), default="reram_sb")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=5, help="print every N epochs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    algorithms = [a for a in ("sgd", "tiki-taka") if a in algorithm_names()]
    for algorithm in algorithms:
        analogkit.manual_seed(0)  # same initial weights and data order for both
        train, test = digits_loaders(batch_size=32)
        config = build_algorithm_tile(algorithm, args.device)  # a TileConfig with a pulsed device
        model = convert_to_analog(MLP(64, hidden=(32,), num_classes=10), config)
        opt = AnalogSGD(model.parameters(), lr=LEARNING_RATES[algorithm])
        print(f"{algorithm} on {args.device} ({type(config.device).__name__}), lr {LEARNING_RATES[algorithm]}")
        for epoch in range(1, args.epochs + 1):
            loss = train_epoch(model, train, opt)
            if epoch % args.every == 0 or epoch == args.epochs:
                print(f"  epoch {epoch:3d}: train loss {loss:.3f}, test accuracy {100 * evaluate(model, test):.1f}%")


if __name__ == "__main__":
    main()
