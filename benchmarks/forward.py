"""Analog forward time as a ratio to ``nn.Linear`` measured in the same run.

Default (non-ideal) IO, tiles of at most 512×512, batch 256, sizes 512 and 2048 (16 tiles).
Also times an eval-mode forward on a layer programmed on PCM and drifted to one day.

    python benchmarks/forward.py [--threads 2] [--repeats 50]
"""

from __future__ import annotations

import argparse
import time

import torch

import analogkit
from analogkit.inference import drift, program
from analogkit.nn import AnalogLinear


def interleaved_ms(ref, fn, repeats: int) -> tuple[float, float]:
    """Median times (ms) of ``ref`` and ``fn``, measured alternately so both see the same machine load;
    ``ref`` runs once untimed before each timed run (warm, as in a loop of its own: see
    ``timing.interleaved``)."""
    for _ in range(3):
        ref()
        fn()
    t_ref, t_fn = [], []
    for _ in range(repeats):
        ref()
        t0 = time.perf_counter()
        ref()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        t_ref.append(t1 - t0)
        t_fn.append(t2 - t1)
    t_ref.sort()
    t_fn.sort()
    return 1e3 * t_ref[repeats // 2], 1e3 * t_fn[repeats // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    analogkit.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats}")
    print(f"{'layer':<26} {'size':>6} {'tiles':>6} {'nn.Linear ms':>13} {'analog ms':>10} {'ratio':>7}")
    for size in (512, 2048):
        x = torch.randn(args.batch, size)
        ref = torch.nn.Linear(size, size)
        layer = AnalogLinear.from_digital(ref)
        programmed = AnalogLinear.from_digital(ref).eval()
        program(programmed)
        drift(programmed, 86400.0)  # PCM, one day after programming, global drift compensation
        for name, module in (("analog (default IO)", layer), ("programmed + drifted, eval", programmed)):
            with torch.no_grad():
                t_ref, t_ana = interleaved_ms(lambda: ref(x), lambda: module(x), args.repeats)
            print(f"{name:<26} {size:>6} {module.tile.n_tiles:>6} {t_ref:>13.3f} {t_ana:>10.3f} {t_ana / t_ref:>6.2f}×")


if __name__ == "__main__":
    main()
