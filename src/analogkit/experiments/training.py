"""Plain training and evaluation loops with optional progress bars."""

from __future__ import annotations

import sys
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal."""
    return sys.stderr.isatty()


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    *,
    desc: str = "train",
    progress: bool | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress_enabled() if progress is None else progress))
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
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Classification accuracy of ``model`` on ``loader`` (eval mode; the mode is restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct, count = 0, 0
    for x, y in loader:
        pred = model(x.to(device)).argmax(dim=-1)
        correct += int((pred == y.to(device)).sum())
        count += len(y)
    model.train(was_training)
    return correct / max(count, 1)
