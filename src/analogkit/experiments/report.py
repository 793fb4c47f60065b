"""The plots and the self-contained HTML report of a run folder.

:func:`write_outputs` draws every figure of a finished run into ``plots/`` and writes
``report.html``; :func:`render_report` builds the page: a summary table, the figures embedded as
base64 PNG data (no external files, scripts, fonts or style sheets), the resolved config and the
list of files, so the page can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import platform
from pathlib import Path
from typing import Any, Callable

import torch

import analogkit
from analogkit.experiments.config import ExperimentConfig, TrainingConfig, time_label

__all__ = ["write_outputs", "render_report", "PLOT_FILES"]

#: The figures of a run, by key: file name and heading.
PLOT_FILES = {
    "training_curves": ("training_curves.png", "Training curves"),
    "over_time": ("accuracy_over_time.png", "Accuracy after programming, over time"),
    "weights": ("weight_distributions.png", "Weights before and after programming"),
    "device": ("device_response.png", "Device pulse response"),
}


def _is_plain_device(device: Any) -> bool:
    return device is not None and hasattr(device, "pulse") and hasattr(device, "dw_min")


def _device_for(training: TrainingConfig) -> tuple[Any, str]:
    """The pulsed device of an on-chip training to draw, and a title. For a compound (unit cell,
    transfer algorithm, mixed precision) its first device; else the training's device preset."""
    from analogkit.devices import build_preset

    tile = training.resolved_tile_or_none()
    device = tile.device if tile is not None else None
    if _is_plain_device(device):
        return device, f"{training.name}: {type(device).__name__}"
    for attr in ("unit_cell_devices", "devices"):
        inner = getattr(device, attr, None)
        if isinstance(inner, (list, tuple)) and inner and _is_plain_device(inner[0]):
            return inner[0], f"{training.name}: {type(inner[0]).__name__} in a {type(device).__name__}"
    inner = getattr(device, "device", None)
    if _is_plain_device(inner):
        return inner, f"{training.name}: {type(inner).__name__} in a {type(device).__name__}"
    return build_preset(training.device), f"{training.name}: device preset {training.device}"


def write_outputs(
    folder: Path, config: ExperimentConfig, metrics: dict[str, Any], *, log: Callable[[str], None] = print
) -> list[Path]:
    """Draw the plots of a finished run into ``folder/plots`` and write ``folder/report.html``."""
    from analogkit.analysis.device_plots import plot_device
    from analogkit.experiments.plots import (
        plot_over_time, plot_training_curves, plot_weight_distributions, weight_snapshots,
    )
    from analogkit.experiments.runner import EVAL_SEED_STRIDE, _deployed, build_experiment_model
    from analogkit.nn.base import seed_tiles

    plots = folder / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    made["training_curves"] = plot_training_curves(metrics, plots / PLOT_FILES["training_curves"][0])
    evaluated = [t for t in config.trainings if metrics["trainings"][t.name].get("over_time")]
    if evaluated:
        made["over_time"] = plot_over_time(metrics, plots / PLOT_FILES["over_time"][0],
                                           title=f"{config.data.name}, {config.model.name}: accuracy on the chip")
        t_last = config.inference.times[-1]
        snapshots = {}
        for k, training in enumerate(config.trainings):
            if training.name not in {t.name for t in evaluated}:
                continue
            model = build_experiment_model(config, training)
            model.load_state_dict(torch.load(folder / "checkpoints" / f"{training.name}.pt", weights_only=True))
            chip = _deployed(config, training, model)
            seed_tiles(chip, config.seed + EVAL_SEED_STRIDE * (k + 1))
            snapshots[training.name] = weight_snapshots(chip, t_last)
        made["weights"] = plot_weight_distributions(snapshots, plots / PLOT_FILES["weights"][0], t_last)
    on_chip = [t for t in config.trainings if t.mode == "on_chip"]
    if on_chip:
        device, title = _device_for(on_chip[0])
        made["device"] = plot_device(device, plots / PLOT_FILES["device"][0], title=title, seed=config.seed)
    report = folder / "report.html"
    report.write_text(render_report(folder, config, metrics, made), encoding="utf-8")
    log(f"wrote {len(made)} plots and {report}")
    return [*made.values(), report]


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
       border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.92em; } th, td { padding: 0.3em 0.7em; text-align: right;
       border-bottom: 1px solid #e5e5e5; } th { background: #f4f4f4; } td.l, th.l { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.82em; max-height: 40em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""

_CAPTIONS = {
    "training_curves": "Mean training loss and test accuracy after each epoch. Digital and hardware-aware "
                       "trainings use SGD on ordinary parameters; on-chip trainings update the devices by pulses.",
    "over_time": "Test accuracy of the trained models programmed on the chip, read at each time after programming "
                 "(mean ± standard deviation over programming repeats, each with new programming noise, drift "
                 "exponents and read noise). Dotted lines: the accuracy measured right after training.",
    "weights": "Crossbar weights (after digital weight scaling) as trained, right after programming (programming "
               "noise), and after the last evaluation time (drift and read noise, multiplied by the drift "
               "compensation factor).",
    "device": "Left: weight of a few devices (device-to-device variation) under trains of up then down pulses. "
              "Right: mean update step per pulse versus weight (± cycle-to-cycle std) of the nominal device.",
}


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _summary_table(config: ExperimentConfig, metrics: dict[str, Any]) -> str:
    times = config.inference.times
    any_time = any(metrics["trainings"][t.name].get("over_time") for t in config.trainings)
    head = ["<th class=l>training</th>", "<th class=l>mode</th>", "<th class=l>chip / device</th>",
            "<th>epochs</th>", "<th>test accuracy</th>"]
    if any_time:
        head += [f"<th>{html.escape(time_label(t))}</th>" for t in times]
    rows = []
    for t in config.trainings:
        e = metrics["trainings"][t.name]
        acc = e.get("test_accuracy")
        cells = [f"<td class=l>{html.escape(t.name)}</td>", f"<td class=l>{html.escape(t.mode.replace('_', '-'))}</td>",
                 f"<td class=l>{html.escape(str(e.get('chip') or '—'))}</td>",
                 f"<td>{len(e.get('history', []))}/{t.epochs}</td>",
                 f"<td>{'—' if acc is None else f'{100 * acc:.1f}%'}</td>"]
        if any_time:
            over = e.get("over_time")
            if over:
                cells += [f"<td>{100 * m:.1f} ± {100 * s:.1f}%</td>" for m, s in zip(over["mean"], over["std"])]
            else:
                cells += ["<td>—</td>"] * len(times)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table><tr>" + "".join(head) + "</tr>" + "".join(rows) + "</table>"


def render_report(folder: Path, config: ExperimentConfig, metrics: dict[str, Any], plots: dict[str, Path]) -> str:
    """The report page (a string of HTML with every image embedded)."""
    title = f"analogkit run “{config.name}”"
    meta = (
        f"{html.escape(config.data.name)} data, model {html.escape(config.model.name)}, seed {config.seed}, "
        f"{config.inference.repeats} programming repeats · analogkit {html.escape(analogkit.__version__)}, "
        f"torch {html.escape(torch.__version__)}, Python {html.escape(platform.python_version())} · "
        f"started {html.escape(str(metrics.get('started', '')))}, report written "
        f"{_dt.datetime.now().isoformat(timespec='seconds')} · folder <code>{html.escape(str(folder))}</code>"
    )
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{meta}</p>',
        "<h2>Summary</h2>", _summary_table(config, metrics),
        "<p class=meta>Test accuracy: after the last epoch, in software (digital model) or on the simulated "
        "tiles in evaluation mode (analog models). Times: accuracy on the programmed chip at that time after "
        "programming.</p>",
    ]
    for key, (_, heading) in PLOT_FILES.items():
        if key not in plots:
            continue
        parts += [f"<h2>{html.escape(heading)}</h2>", "<figure>", _img(plots[key], heading),
                  f"<figcaption>{html.escape(_CAPTIONS[key])}</figcaption>", "</figure>"]
    config_text = (folder / "config.yaml").read_text() if (folder / "config.yaml").is_file() else config.to_yaml()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    if "report.html" not in files:
        files.append("report.html")
    parts += [
        "<h2>Configuration</h2>",
        "<p>The fully resolved experiment (<code>config.yaml</code>); "
        "<code>analogkit run config.yaml</code> repeats it.</p>",
        f"<details><summary>config.yaml</summary><pre>{html.escape(config_text)}</pre></details>",
        "<h2>Files</h2>", "<ul>" + "".join(f"<li><code>{html.escape(f)}</code></li>" for f in files) + "</ul>",
        "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"
