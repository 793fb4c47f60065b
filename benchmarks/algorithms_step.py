"""One on-chip training step with a residual training algorithm, as a ratio to nn.Linear + SGD.

Tiki-Taka, chopped TTv2 and AGAD (``build_config`` defaults) on soft-bounds devices, one 512×512
tile, batch 64, in the two regimes of ``benchmarks/train_step.py``:

- dense:  x ~ N(0, 1), loss (y·g).sum() with a fixed g ~ N(0, 0.1²), lr 0.05
- sparse: MSE against random targets, lr 0.01 (small gradients, short pulse trains)

Reference and analog steps are timed interleaved (reference, analog, reference, …) and the median
of each is reported, so a machine shared with other processes slows both alike; the reference runs
once untimed before each timed run (``timing.interleaved``: straight after a long analog step it
took twice its steady-state time, which flattered the ratios). As in
``train_step.py``, each timed step starts from the initial weights of the arrays (restored untimed;
``--saturate`` keeps them), while digital state (buffers, choppers, counters) evolves. ``--presets``
times every algorithm preset (``analogkit.compounds.ALGORITHM_PRESETS``, or the ones named) instead.

    python benchmarks/algorithms_step.py [--algorithms tiki-taka c-ttv2 agad] [--size 512] [--repeats 20]
    python benchmarks/algorithms_step.py --presets [NAME ...] [--repeats 5] [--saturate]

Where the time goes: the gradient write onto the fast array is the update engine's stochastic pulse
update (``analogkit.update``), so Tiki-Taka costs what Analog SGD costs plus one column read and
write per step; c-TTv2 and AGAD auto-scale the fast learning rate to ~BL·fast_lr pulses per update
at the largest |x|·|d| in both regimes (so "sparse" is not sparse for them) and read one column per
sample. PyTorch's and the numba kernels' OpenMP pools both spin after a parallel region; on two
cores they slow each other down (``OMP_WAIT_POLICY=PASSIVE`` in the environment changes the figures,
the reference's too).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import analogkit
from analogkit.compounds import ALGORITHM_PRESETS, build_config
from analogkit.config import MappingConfig
from analogkit.devices import SoftBoundsDevice
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD
from timing import interleaved, make_step


def regimes(size: int):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, size, generator=gen)
    g = 0.1 * torch.randn(64, size, generator=gen)
    target = torch.randn(64, size, generator=gen)
    return x, {
        "dense": (0.05, lambda y: (y * g).sum()),
        "sparse": (0.01, lambda y: nn.functional.mse_loss(y, target)),
    }


def weight_restorer(layer, saturate=False):
    """Untimed reset of the arrays' hidden weights (``w`` and ``d{k}__w`` of the tile's device state).

    With a fixed x and g every step pushes each weight the same way, and after a few steps every
    device would sit at a bound — not what training looks like (as in ``train_step.py``). Digital
    state (buffers, choppers, counters, running means) keeps evolving as in training.
    """
    if saturate:
        return lambda: None
    tensors = layer.tile.device_state.tensors()
    saved = {k: v.clone() for k, v in tensors.items() if k == "w" or k.endswith("__w")}

    def restore():
        current = layer.tile.device_state.tensors()
        for k, v in saved.items():
            current[k].copy_(v)

    return restore


def measure(config, size, x, lr, loss_fn, repeats, saturate=False):
    config = config.replace(mapping=MappingConfig(max_input_size=size, max_output_size=size))
    ref = nn.Linear(size, size)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
    layer = AnalogLinear(size, size, config=config)
    opt = AnalogSGD(layer.parameters(), lr=lr)
    (t_ref, m_ref), (t_ana, m_ana) = interleaved(
        [make_step(ref, ref_opt, x, loss_fn), make_step(layer, opt, x, loss_fn)], repeats,
        weight_restorer(layer, saturate),
    )
    return t_ref, t_ana, m_ref, m_ana


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=["tiki-taka", "c-ttv2", "agad"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="*", default=None, help="time algorithm presets (all if no name is given)")
    parser.add_argument("--saturate", action="store_true", help="do not restore the arrays' weights between steps")
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
          f"median (min) of {args.repeats} interleaved steps (reference re-warmed)"
          + ("" if args.saturate else ", array weights restored before each step"))
    print(f"{'regime':<7} {'config':<28} {'torch ms':>9} {'analog ms':>10} {'ratio':>8} {'ratio of minima':>16}")
    for regime, (lr, loss_fn) in regs.items():
        for name, cfg in configs:
            t_ref, t_ana, m_ref, m_ana = measure(cfg, size, x, lr, loss_fn, args.repeats, args.saturate)
            print(f"{regime:<7} {name:<28} {t_ref:>9.3f} {t_ana:>10.3f} {t_ana / t_ref:>7.1f}× {m_ana / m_ref:>15.1f}×",
                  flush=True)


if __name__ == "__main__":
    main()
