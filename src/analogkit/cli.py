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


def _load_device(name_or_file: str):  # noqa: ANN202 - returns a Device
    """A device preset by name, or a device config from a YAML/JSON file (with a ``kind`` key)."""
    from pathlib import Path

    import yaml

    from analogkit.devices import DEVICE_PRESETS, build_preset, device_from_dict

    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}", param_hint="DEVICE")
        data = yaml.safe_load(path.read_text())
        try:
            return device_from_dict(data)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="DEVICE") from None
    if name_or_file not in DEVICE_PRESETS:
        raise click.BadParameter(
            f"unknown device preset {name_or_file!r}; use one of {', '.join(DEVICE_PRESETS)} or a .yaml file",
            param_hint="DEVICE",
        )
    return build_preset(name_or_file)


@main.group()
def device() -> None:
    """Pulsed device models: list presets, plot responses."""


@device.command("plot")
@click.argument("name")
@click.option("-o", "--output", default="device.png", show_default=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--pulses", type=click.IntRange(1), default=None, help="Pulses per up/down ramp (default: the device's range in steps).")
@click.option("--cycles", type=click.IntRange(1), default=2, show_default=True, help="Up/down cycles.")
@click.option("--traces", type=click.IntRange(1), default=5, show_default=True, help="Devices drawn (device-to-device variation).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
def device_plot(name: str, output: str, pulses: int | None, cycles: int, traces: int, seed: int) -> None:
    """Plot the pulse response and the update step vs weight of a device preset NAME or a YAML file."""
    from analogkit.analysis.device_plots import plot_device

    dev = _load_device(name)
    path = plot_device(dev, output, title=name, n_pulses=pulses, n_cycles=cycles, n_traces=traces, seed=seed)
    click.echo(f"wrote {path}")


@device.command("list")
def device_list() -> None:
    """Device presets, one line each with its source."""
    from analogkit.devices import DEVICE_PRESETS, preset_source

    for name in DEVICE_PRESETS:
        click.echo(f"{name:<18} {preset_source(name)}")


if __name__ == "__main__":  # pragma: no cover
    main()
