"""The ``analogkit`` command line. Thin: it parses arguments and calls the library."""

from __future__ import annotations

import os
import platform
import time

import click
import torch

import analogkit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(analogkit.__version__, prog_name="analogkit")
def main() -> None:
    """analogkit: simulate analog in-memory computing hardware for deep learning."""


@main.command()
def info() -> None:
    """Versions, compute device and threads."""
    import numpy

    click.echo(f"analogkit {analogkit.__version__}")
    click.echo(f"python    {platform.python_version()} ({platform.machine()}, {platform.system()})")
    click.echo(f"torch     {torch.__version__}")
    click.echo(f"numpy     {numpy.__version__}")
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    click.echo(f"device    {device}{' (CUDA ' + str(torch.version.cuda) + ')' if cuda else ''}")
    click.echo(f"threads   {torch.get_num_threads()} (torch intra-op), {os.cpu_count()} CPUs")


@main.command()
@click.option("--epochs", default=15, show_default=True, type=click.IntRange(1, 10_000), help="Training epochs.")
@click.option("--lr", default=0.05, show_default=True, type=click.FloatRange(0, min_open=True), help="Learning rate (SGD).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed for the whole run.")
def run(epochs: int, lr: float, seed: int) -> None:
    """Train a small model on the bundled digits data through analog layers; print test accuracy."""
    from analogkit.data import digits_loaders
    from analogkit.experiments import evaluate, train_epoch
    from analogkit.models import MLP
    from analogkit.nn import analog_summary, convert_to_analog

    analogkit.manual_seed(seed)
    train, test = digits_loaders(batch_size=32, seed=seed)
    digital = MLP(64, hidden=(64,), num_classes=10)
    analog = convert_to_analog(digital, analogkit.TileConfig())
    click.echo("Model on analog tiles (default periphery: 7-bit DAC, 9-bit ADC, output noise 0.06):")
    click.echo(str(analog_summary(analog, (64,))))
    results = {}
    for name, model in (("digital", digital), ("analog", analog)):
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        start = time.perf_counter()
        for epoch in range(epochs):
            loss = train_epoch(model, train, opt, desc=f"{name} epoch {epoch + 1}/{epochs}")
        acc = evaluate(model, test)
        results[name] = acc
        click.echo(f"{name:>8}: test accuracy {100 * acc:5.1f}%  (final train loss {loss:.3f}, {time.perf_counter() - start:.1f} s)")
    click.echo(f"accuracy cost of the analog periphery: {100 * (results['digital'] - results['analog']):+.1f} points")


if __name__ == "__main__":  # pragma: no cover
    main()
