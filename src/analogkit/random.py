"""Seeding: every tile owns a ``torch.Generator``; this module hands out their seeds.

``analogkit.manual_seed(s)`` seeds PyTorch's global generator (for weight initialisation and data
shuffling) and restarts the sequence of tile seeds, so that a script that calls it first repeats
exactly. Library code never draws from the global generator during simulation: each tile draws
its noise from its own generator, whose state is saved in checkpoints.
"""

from __future__ import annotations

import torch

_SEED_SOURCE: torch.Generator | None = None


def manual_seed(seed: int) -> None:
    """Seed PyTorch and the sequence of per-tile generator seeds."""
    global _SEED_SOURCE
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"manual_seed: seed {seed!r} is not allowed; use an integer >= 0")
    torch.manual_seed(seed)
    _SEED_SOURCE = torch.Generator().manual_seed(seed ^ 0x5EED_A1A1)


def next_seed() -> int:
    """Seed for a newly built tile: from the sequence started by :func:`manual_seed`, or, if that was
    never called, drawn from PyTorch's global generator (so ``torch.manual_seed`` alone also works)."""
    if _SEED_SOURCE is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    return int(torch.randint(0, 2**62, (1,), generator=_SEED_SOURCE).item())


def make_generator(seed: int | None = None, device: torch.device | str | None = None) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (or :func:`next_seed`)."""
    gen = torch.Generator(device=device or "cpu")
    gen.manual_seed(next_seed() if seed is None else seed)
    return gen
