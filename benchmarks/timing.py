"""Timing helpers shared by the training-step benchmarks (run as scripts from this folder)."""

from __future__ import annotations

import time


def make_step(model, opt, x, loss_fn):
    def step():
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()

    return step


def interleaved(fns, repeats, prepare=lambda: None, warmup=2, rewarm=(0,)):
    """Median and minimum wall time (ms) of each function, timed in turn; ``prepare()`` runs untimed
    before each round.

    The functions in ``rewarm`` (by default the first: the plain-PyTorch reference) run once untimed
    right before their timed run in every round. Timed straight after a long analog step, the
    reference step took twice its steady-state time (0.9–1.1 ms instead of 0.47 ms for the 512×512
    step, measured): its caches were cold and PyTorch's worker threads asleep. A training loop of
    the reference alone never pays that, so ratios against it would flatter the analog step.
    """
    for fn in fns:
        for _ in range(warmup):
            prepare()
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        prepare()
        for k, fn in enumerate(fns):
            if k in rewarm:
                fn()
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [(1e3 * sorted(t)[len(t) // 2], 1e3 * min(t)) for t in times]
