"""The ``analogkit`` command line. Thin: it parses arguments and calls the library."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import click
import torch
import yaml

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


def _config_error(message: str) -> None:
    """Print a one-line config error and exit with status 2 (no traceback)."""
    click.echo(f"analogkit: error: {' '.join(str(message).split())}", err=True)
    sys.exit(2)


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<timestamp>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--quick", is_flag=True, help="A tiny version: few batches, at most 2 epochs, 1 programming repeat.")
@click.option("--epochs", type=click.IntRange(1, 10_000), default=None, help="Override the epochs of every training.")
@click.option("--seed", type=click.IntRange(0), default=None, help="Override the experiment's seed.")
def run(config: str | None, out: str | None, resume: bool, quick: bool, epochs: int | None, seed: int | None) -> None:
    """Run an experiment: train, evaluate over time, write plots and an HTML report.

    CONFIG is an experiment YAML file (start from `analogkit config show demo`). Without it, the
    demo runs: digits with a small MLP, comparing digital training, hardware-aware training (both
    read on a PCM chip from 1 s to 1 year after programming, with global drift compensation) and
    on-chip training on a ReRAM device. Interrupt with Ctrl-C; continue with --resume --out DIR.
    """
    from analogkit.experiments.config import ConfigError, ExperimentConfig, load_experiment
    from analogkit.experiments.runner import run_experiment

    try:
        experiment = load_experiment(Path(config)) if config is not None else None
        if experiment is not None or not resume:
            experiment = experiment if experiment is not None else ExperimentConfig()
            if quick:
                experiment = experiment.quick()
            if epochs is not None:
                experiment = experiment.replace(trainings=[t.replace(epochs=epochs) for t in experiment.trainings])
            if seed is not None:
                experiment = experiment.replace(seed=seed)
        elif quick or epochs is not None or seed is not None:
            raise ConfigError("--resume: --quick, --epochs and --seed are not allowed; the run continues "
                              "with the settings in its config.yaml")
        run_experiment(experiment, out, resume=resume, log=click.echo)
    except ConfigError as err:
        _config_error(str(err))
    except KeyboardInterrupt as err:
        folder = getattr(err, "run_folder", None) or out or "the run folder"
        click.echo(f"\ninterrupted: the last epoch's checkpoint and the metrics so far are in {folder}; "
                   f"continue with: analogkit run --resume --out {folder}", err=True)
        sys.exit(130)


@main.command()
@click.option("--kind", type=click.Choice(["device", "algorithm", "inference", "experiment"]), default=None,
              help="Only presets of this kind.")
def presets(kind: str | None) -> None:
    """Every preset (device, algorithm, inference, experiment), one line each with its source."""
    from analogkit.experiments.presets import all_presets

    rows = [r for r in all_presets() if kind in (None, r.kind)]
    width = max(len(r.name) for r in rows) + 2
    for r in rows:
        click.echo(f"{r.kind:<11}{r.name:<{width}}{r.source}")


@main.group("config")
def config_group() -> None:
    """Configs to start from: show a preset as YAML."""


@config_group.command("show")
@click.argument("name")
@click.option("--kind", type=click.Choice(["device", "algorithm", "inference", "experiment"]), default=None,
              help="Which kind of preset NAME is (if names clash).")
def config_show(name: str, kind: str | None) -> None:
    """Print the preset NAME as YAML (an experiment, a TileConfig, or a device with its kind).

    NAME is one of the names `analogkit presets` lists, or ALGORITHM:DEVICE (for example
    sgd:reram_sb) for the tile of on-chip training. Save the output to a file, edit it, and pass an
    experiment to `analogkit run`; a tile goes under a training's `tile:` key.
    """
    from analogkit.experiments.presets import preset_config

    try:
        cfg = preset_config(name, kind)
    except ValueError as err:
        _config_error(str(err))
    data = cfg.to_dict()
    if getattr(cfg, "kind", ""):
        data = {"kind": cfg.kind, **data}
    click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def _load_device(name_or_file: str):  # noqa: ANN202 - returns a Device
    """A device preset by name, or a device config from a YAML/JSON file (with a ``kind`` key)."""

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
