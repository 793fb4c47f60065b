"""One on-chip training step with a residual training algorithm, as a ratio to nn.Linear + SGD.

Tiki-Taka, chopped TTv2 and AGAD (``build_config`` defaults) on soft-bounds devices, one 512×512
tile, batch 64, in the two regimes of ``benchmarks/train_step.py``:

- dense:  x ~ N(0, 1), loss (y·g).sum() with a fixed g ~ N(0, 0.1²), lr 0.05
- sparse: MSE against random targets, lr 0.01 (small gradients, short pulse trains)

Reference and analog steps are timed interleaved (reference, analog, reference, …) and the median
of each is reported, so a machine shared with other processes slows both alike. ``--presets``
times every algorithm preset (``analogkit.compounds.ALGORITHM_PRESETS``, or the ones named) instead.

    python benchmarks/algorithms_step.py [--algorithms tiki-taka c-ttv2 agad] [--size 512] [--repeats 20]
    python benchmarks/algorithms_step.py --presets [NAME ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import analogkit
from analogkit.compounds import ALGORITHM_PRESETS, build_config
from analogkit.config import MappingConfig
from analogkit.devices import SoftBoundsDevice
from analogkit.config import TileConfig
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD


def make_step(model, opt, x, loss_fn):
    def step():
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()

    return step


def interleaved(fns, repeats, warmup=2):
    """Median and minimum wall time (ms) of each function, timed in turn."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [(1e3 * sorted(t)[len(t) // 2], 1e3 * min(t)) for t in times]


def regimes(size: int):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, size, generator=gen)
    g = 0.1 * torch.randn(64, size, generator=gen)
    target = torch.randn(64, size, generator=gen)
    return x, {
        "dense": (0.05, lambda y: (y * g).sum()),
        "sparse": (0.01, lambda y: nn.functional.mse_loss(y, target)),
    }


def measure(config, size, x, lr, loss_fn, repeats):
    config = config.replace(mapping=MappingConfig(max_input_size=size, max_output_size=size))
    ref = nn.Linear(size, size)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
    layer = AnalogLinear(size, size, config=config)
    opt = AnalogSGD(layer.parameters(), lr=lr)
    (t_ref, m_ref), (t_ana, m_ana) = interleaved(
        [make_step(ref, ref_opt, x, loss_fn), make_step(layer, opt, x, loss_fn)], repeats
    )
    return t_ref, t_ana, m_ref, m_ana


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=["tiki-taka", "c-ttv2", "agad"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="*", default=None, help="time algorithm presets (all if no name is given)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    analogkit.manual_seed(0)
    size = args.size
    x, regs = regimes(size)
    if args.presets is not None:
        names = args.presets or list(ALGORITHM_PRESETS)
        configs = [(name, ALGORITHM_PRESETS.get(name)()) for name in names]
    else:
        configs = [(alg, build_config(alg, SoftBoundsDevice())) for alg in args.algorithms]
    print(f"torch {torch.__version__}, {args.threads} threads, {size}×{size}, batch 64, "
          f"median (min) of {args.repeats} interleaved steps")
    print(f"{'regime':<7} {'config':<28} {'torch ms':>9} {'analog ms':>10} {'ratio':>8} {'ratio of minima':>16}")
    for regime, (lr, loss_fn) in regs.items():
        for name, cfg in configs:
            t_ref, t_ana, m_ref, m_ana = measure(cfg, size, x, lr, loss_fn, args.repeats)
            print(f"{regime:<7} {name:<28} {t_ref:>9.3f} {t_ana:>10.3f} {t_ana / t_ref:>7.1f}× {m_ana / m_ref:>15.1f}×",
                  flush=True)


if __name__ == "__main__":
    main()
