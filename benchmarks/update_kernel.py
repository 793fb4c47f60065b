"""Time of the pulsed update alone (``pulsed_update_``), per regime, device, back-end and size.

Regimes (batch 64, default ``UpdateConfig``, devices with their default d2d/c2c variation):

* dense:  x ~ N(0, 1), d ~ N(0, 0.1²), lr 0.05: full BL 31, about three coincidences per
  element and sample (≈ 53 M pulses per call at 512×512, 16.7 M element-samples);
* sparse: x ~ N(0, 1), d = MSE gradient against random targets (2(y − t)/(M·out) ≈ 6·10⁻⁵),
  lr 0.01: BL 1, about a hundred coincidences per sample.

The hidden weights are restored before every call (not timed), so each call sees the same
weights; the d2d parameters are left alone, as in training. Every figure is the minimum over
``--repeats`` calls (more for fast calls: other processes may share the CPU), next to the minimum
time of one ``nn.Linear`` forward + backward + ``torch.optim.SGD`` step of the same size and batch
measured in the same run; the ratio is update time / that step. The PyTorch reference back-end
is timed up to ``--torch-max-size`` only (it takes seconds per call).

    python benchmarks/update_kernel.py [--threads 2] [--repeats 7] [--sizes 512 1024]
                                       [--devices constant_step soft_bounds exp_step pcm reram_es]

``--devices`` takes device kinds (``analogkit.devices.DEVICES``) and device presets
(``analogkit.devices.DEVICE_PRESETS``); ``closed_form`` is timed for affine-step devices only (the
others have no closed form).
"""

from __future__ import annotations

import argparse
import time

import torch

from analogkit.devices import (
    DEVICE_PRESETS,
    DEVICES,
    AffineStepDevice,
    ConstantStepDevice,
)
from analogkit.update import UpdateConfig, pulsed_update_


def linear_step_ms(size: int, batch: int, repeats: int) -> float:
    layer = torch.nn.Linear(size, size)
    opt = torch.optim.SGD(layer.parameters(), lr=0.01)
    x = torch.randn(batch, size)
    t = torch.randn(batch, size)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.mse_loss(layer(x), t).backward()
        opt.step()

    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(max(repeats, 20)):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def regime(name: str, size: int, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    x = torch.randn(batch, size, generator=gen)
    if name == "dense":
        return x, 0.1 * torch.randn(batch, size, generator=gen), 0.05
    target = torch.randn(batch, size, generator=gen)
    y = torch.zeros(batch, size)  # a freshly initialised analog layer reads ≈ 0
    return x, 2 * (y - target) / (batch * size), 0.01


def time_update(device, size: int, x, d, lr, cfg: UpdateConfig, repeats: int) -> tuple[float, object]:
    gen = torch.Generator().manual_seed(1)
    state = device.build_state((size, size), gen)
    saved_w = state.w.clone()
    t0 = time.perf_counter()
    stats = pulsed_update_(device, state, x, d, lr, cfg, gen)  # compile / warm up
    first = time.perf_counter() - t0
    stats = pulsed_update_(device, state, x, d, lr, cfg, gen)
    best = float("inf")
    for _ in range(max(repeats, min(200, int(0.3 / max(first, 1e-4))))):  # fast calls: more repeats
        state.w.copy_(saved_w)  # only w: the d2d parameters never change during training
        t0 = time.perf_counter()
        stats = pulsed_update_(device, state, x, d, lr, cfg, gen)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--regimes", nargs="+", default=["dense", "sparse"])
    parser.add_argument("--backends", nargs="+", default=["numba", "torch"])
    parser.add_argument("--torch-max-size", type=int, default=512, help="skip the slow torch back-end above this size")
    parser.add_argument("--devices", nargs="+", default=["constant_step", "soft_bounds"],
                        help="device kinds or device presets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = {name: (DEVICES.get(name)() if name in DEVICES else DEVICE_PRESETS.get(name)()) for name in args.devices}
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, min of {args.repeats}")
    print(f"{'size':>5} {'regime':>7} {'device':>14} {'backend':>7} {'application':>12} "
          f"{'update ms':>10} {'step ms':>8} {'ratio':>7} {'pulses':>10} {'mean BL':>8} kernel")
    for size in args.sizes:
        ref_ms = linear_step_ms(size, args.batch, args.repeats)
        for reg in args.regimes:
            x, d, lr = regime(reg, size, args.batch, torch.Generator().manual_seed(0))
            for dname, device in devices.items():
                for backend in args.backends:
                    if backend == "torch" and size > args.torch_max_size:
                        continue
                    closed = isinstance(device, AffineStepDevice) and not isinstance(device, ConstantStepDevice)
                    apps = ["exact", "closed_form"] if closed else ["exact"]
                    for app in apps:
                        cfg = UpdateConfig(backend=backend, pulse_application=app)
                        reps = args.repeats if backend == "numba" else max(1, min(args.repeats, 2))
                        ms, st = time_update(device, size, x, d, lr, cfg, reps)
                        print(f"{size:>5} {reg:>7} {dname:>14} {backend:>7} {app:>12} {ms:>10.3f} {ref_ms:>8.3f} "
                              f"{ms / ref_ms:>6.1f}× {st.pulses:>10} {st.mean_bl:>8.2f} {st.kernel}", flush=True)


if __name__ == "__main__":
    main()
