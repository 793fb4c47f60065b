"""Hardware-aware training of a ResNet on CIFAR-10 from local files, then accuracy over time on PCM.

The CIFAR-10 "python version" batches (``data_batch_1`` … ``data_batch_5``, ``test_batch``) are
read from FOLDER (or FOLDER/cifar-10-batches-py); nothing is downloaded. The ResNet's convolutions
and its last layer run on analog tiles configured with the ``pcm_hwa`` preset (weight noise and
clipping in every training batch, 8-bit DAC/ADC, output noise), trained with SGD and a cosine
learning-rate schedule, then programmed on the ``pcm_chip`` and read from 1 s to 1 year.

    python examples/hwa_resnet_cifar10.py FOLDER [--depth 20] [--epochs 30] [--batch-size 128]
                                                 [--max-batches N] [--repeats 3] [--threads 0]

A full run (ResNet-20, 30 epochs) takes hours on a CPU; use a GPU (``--device cuda``) for real
results, or ``--max-batches`` for a quick look.
"""

from __future__ import annotations

import argparse

import torch

import analogkit
from analogkit.analysis import evaluate_over_time
from analogkit.data import cifar10_loaders
from analogkit.experiments import LimitedLoader, evaluate, train_epoch
from analogkit.experiments.config import DEFAULT_TIMES, time_label
from analogkit.experiments.presets import build_tile_preset
from analogkit.models import build_model
from analogkit.nn import analog_summary, convert_to_analog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder with the CIFAR-10 python batches")
    parser.add_argument("--depth", type=int, choices=[20, 32, 44, 56], default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--max-batches", type=int, default=0, help="batches per pass (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="programmings per time")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    analogkit.manual_seed(0)

    train, test = cifar10_loaders(args.folder, batch_size=args.batch_size, seed=0)
    train, test = LimitedLoader(train, args.max_batches), LimitedLoader(test, args.max_batches)
    model = build_model(f"resnet{args.depth}", (3, 32, 32), 10)
    model = convert_to_analog(model, build_tile_preset("pcm_hwa")).to(args.device)
    print(analog_summary(model, (3, 32, 32)))

    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    for epoch in range(1, args.epochs + 1):
        loss = train_epoch(model, train, opt, desc=f"epoch {epoch}/{args.epochs}")
        schedule.step()
        print(f"epoch {epoch}: train loss {loss:.3f}, test accuracy {100 * evaluate(model, test):.1f}%")

    # the trained weights on the inference chip (the training-time noise switched off)
    analogkit.manual_seed(1)
    chip = convert_to_analog(analogkit.convert_to_digital(model), build_tile_preset("pcm_chip")).to(args.device)
    result = evaluate_over_time(chip, test, DEFAULT_TIMES, repeats=args.repeats)
    for t, m, s in zip(result.times, result.mean, result.std):
        print(f"{time_label(t):>8} after programming: {100 * m:.1f} ± {100 * s:.1f}%")


if __name__ == "__main__":
    main()
