"""One on-chip training step (forward, backward, pulsed update) as a ratio to nn.Linear + SGD.

Single-tile layers of 512×512 and 1024×1024, batch 64, default IO and update settings, in two
regimes (issue "On-chip training", benchmark section):

- dense:  x ~ N(0, 1), loss (y·g).sum() with a fixed g ~ N(0, 0.1²), lr 0.05 → full BL 31
- sparse: MSE against random targets, lr 0.01 → gradients ~1e-4, BL management shortens trains

Reference and analog steps are timed in turn, the reference re-warmed by an untimed step before
each timed one (``timing.interleaved``).

    python benchmarks/train_step.py [--devices constant_step soft_bounds] [--sizes 512 1024] [--repeats 20]
                                    [--pulse-application exact|closed_form] [--saturate]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import analogkit
from analogkit.config import MappingConfig, TileConfig
from analogkit.devices import DEVICES
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD
from analogkit.update.config import UpdateConfig
from timing import interleaved, make_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=["constant_step", "soft_bounds"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pulse-application", default="exact", choices=["exact", "closed_form"])
    parser.add_argument("--saturate", action="store_true", help="do not restore the weights between steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    analogkit.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 64, median of {args.repeats}; "
          f"pulse_application={args.pulse_application}")
    print(f"{'regime':<7} {'size':>5} {'device':<14} {'torch ms':>9} {'analog ms':>10} {'ratio':>8}")
    for size in args.sizes:
        x = torch.randn(64, size)
        g = 0.1 * torch.randn(64, size)
        target = torch.randn(64, size)
        regimes = {
            "dense": (0.05, lambda y: (y * g).sum()),
            "sparse": (0.01, lambda y: nn.functional.mse_loss(y, target)),
        }
        for regime, (lr, loss_fn) in regimes.items():
            for name in args.devices:
                cfg = TileConfig(
                    device=DEVICES.get(name)(),
                    update=UpdateConfig(pulse_application=args.pulse_application),
                    mapping=MappingConfig(max_input_size=size, max_output_size=size),
                )
                ref = nn.Linear(size, size)
                ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
                layer = AnalogLinear(size, size, config=cfg)
                opt = AnalogSGD(layer.parameters(), lr=lr)
                # With a fixed x and g every step pushes each weight the same way: after a few steps
                # all devices sit at their bounds, which is not what training looks like. Each timed
                # step therefore starts from the initial device weights (restored untimed).
                w0 = layer.tile.device_w.clone()
                restore = (lambda w0=w0, layer=layer: layer.tile.device_w.copy_(w0)) if not args.saturate else (lambda: None)
                (t_ref, _), (t_ana, _) = interleaved([make_step(ref, ref_opt, x, loss_fn), make_step(layer, opt, x, loss_fn)], args.repeats, restore)
                print(f"{regime:<7} {size:>5} {name:<14} {t_ref:>9.3f} {t_ana:>10.3f} {t_ana / t_ref:>7.1f}×")


if __name__ == "__main__":
    main()
