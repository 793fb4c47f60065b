"""Plain training and evaluation loops with optional progress bars."""

from __future__ import annotations

import itertools
import sys
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal."""
    return sys.stderr.isatty()


class LimitedLoader:
    """The first ``max_batches`` batches of ``loader`` (all of them if ``max_batches`` is 0 or None).

    Iterating it creates one iterator of the underlying loader per pass, exactly as iterating the
    loader does, so a seeded loader's shuffling advances the same way whether or not it is cut short.
    """

    def __init__(self, loader: Iterable, max_batches: int | None = None) -> None:
        self.loader = loader
        self.max_batches = max_batches or None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return itertools.islice(iter(self.loader), self.max_batches)

    def __len__(self) -> int:
        n = len(self.loader)  # type: ignore[arg-type]
        return n if self.max_batches is None else min(n, self.max_batches)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    *,
    desc: str = "train",
    progress: bool | None = None,
    max_batches: int | None = None,
) -> float:
    """One pass over ``loader`` (its first ``max_batches`` batches, if given); returns the mean training loss."""
    model.train()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    bar = tqdm(LimitedLoader(loader, max_batches), desc=desc, leave=False, disable=not (progress_enabled() if progress is None else progress))
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
        bar.set_postfix(loss=f"{total / count:.3f}")
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, max_batches: int | None = None) -> float:
    """Classification accuracy of ``model`` on ``loader`` (its first ``max_batches`` batches, if
    given; eval mode, the mode is restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct, count = 0, 0
    for x, y in LimitedLoader(loader, max_batches):
        pred = model(x.to(device)).argmax(dim=-1)
        correct += int((pred == y.to(device)).sum())
        count += len(y)
    model.train(was_training)
    return correct / max(count, 1)
