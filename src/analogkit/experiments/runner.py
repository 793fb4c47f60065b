"""Run an experiment into a folder: resolved config, metrics, checkpoints, plots and an HTML report.

:func:`run_experiment` trains every training of an :class:`ExperimentConfig` in turn, evaluates
it (test accuracy, and accuracy over time on the programmed chip), then draws the plots and
writes the report. The run folder::

    config.yaml                  the fully resolved experiment (every tile preset expanded)
    metrics.json, metrics.csv    per-epoch history, final accuracy, accuracy over time; status
    checkpoints/NAME.state.pt    resume state after the last finished epoch (see below)
    checkpoints/NAME.pt          the trained model's state dict
    plots/*.png                  training curves, accuracy over time, device pulse response,
                                 weight distributions before and after programming
    report.html                  everything above in one self-contained page

Interruptions (Ctrl-C, SIGINT) keep the last epoch's checkpoint and the metrics so far; running
again with ``resume=True`` continues from there and ends with the same result as an
uninterrupted run. The resume state holds the model and optimizer state dicts (every tile's
generator and device state is in the model's), the epoch, the history, and every random state
the run draws from: PyTorch's global generator, the data loader's and the augmentation's
generators, analogkit's tile-seed sequence, Python's and NumPy's generators. All files load
with ``torch.load(path, weights_only=True)``.

Every training starts from ``analogkit.manual_seed(seed)``, so all trainings start from the same
initial weights and see the data in the same order; the evaluation of training k reseeds its tiles
from ``seed`` and k, so it does not depend on whether the training was resumed.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import analogkit
import analogkit.random as _ak_random
from analogkit.experiments.config import ConfigError, ExperimentConfig, TrainingConfig, load_experiment, time_label
from analogkit.experiments.training import LimitedLoader, evaluate, progress_enabled, train_epoch

__all__ = ["RunResult", "run_experiment", "default_run_folder", "build_experiment_model", "STATE_FORMAT"]

STATE_FORMAT = 1
EVAL_SEED_STRIDE = 7919  # evaluation of training k reseeds its tiles from seed + stride·(k + 1)


@dataclass
class RunResult:
    """What :func:`run_experiment` returns: the run folder, the resolved config and the metrics."""

    folder: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.folder / "report.html"


def default_run_folder(root: str | Path = "runs") -> Path:
    """``runs/<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``, … if that exists already)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / stamp
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{stamp}-{n}")
    return path


# -- small helpers --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold SIGINT back while a file is written, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not in the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with _deferred_interrupt():
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _atomic_save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write_bytes(path, buffer.getvalue())


def _rng_state(train_loader: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    gen = getattr(train_loader, "generator", None)
    if isinstance(gen, torch.Generator):
        state["loader"] = gen.get_state()
    augment = getattr(getattr(train_loader, "dataset", None), "generator", None)
    if isinstance(augment, torch.Generator):
        state["augment"] = augment.get_state()
    if _ak_random._SEED_SOURCE is not None:
        state["analogkit"] = _ak_random._SEED_SOURCE.get_state()
    version, internal, gauss = random.getstate()
    state["python"] = {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)}
    return state


def _set_rng_state(state: dict[str, Any], train_loader: Any) -> None:
    torch.set_rng_state(state["torch"])
    if "loader" in state:
        train_loader.generator.set_state(state["loader"])
    if "augment" in state:
        train_loader.dataset.generator.set_state(state["augment"])
    if "analogkit" in state:
        if _ak_random._SEED_SOURCE is None:
            _ak_random._SEED_SOURCE = torch.Generator()
        _ak_random._SEED_SOURCE.set_state(state["analogkit"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"]))


def _tile_label(original: TrainingConfig | None, resolved: TrainingConfig) -> str | None:
    """How the chip was given: a preset name, ``ALGORITHM on DEVICE``, or ``custom``."""
    source = original if original is not None else resolved
    if isinstance(source.tile, str):
        return source.tile
    if source.tile is None and source.mode == "on_chip":
        return f"{source.algorithm} on {source.device}"
    if resolved.tile is None:
        return None
    return "custom"


def build_experiment_model(config: ExperimentConfig, training: TrainingConfig) -> nn.Module:
    """The model of ``training`` as it is trained: digital for ``digital`` mode, converted to analog
    layers with the training's tile otherwise. Seeds ``analogkit.manual_seed(config.seed)`` first,
    so every training starts from the same initial weights."""
    from analogkit.data import dataset_info
    from analogkit.models import build_model
    from analogkit.nn import convert_to_analog

    analogkit.manual_seed(config.seed)
    info = dataset_info(config.data.name)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in config.model.options.items()}
    try:
        model = build_model(config.model.name, info.input_shape, info.num_classes, **options)
    except TypeError as err:
        raise ConfigError(f"model.options: {options!r} is not allowed for {config.model.name!r} ({err})") from None
    except ValueError as err:
        raise ConfigError(f"model.options: {' '.join(str(err).split())}") from None
    tile = training.resolved_tile_or_none()
    if training.mode != "digital":
        model = convert_to_analog(model, tile, exclude=config.model.exclude)
    return model


def _preflight(config: ExperimentConfig) -> None:
    """Build every training's model (and its chip) once, so that options the model or the tiles
    refuse are reported as config errors before the run folder is written."""
    for k, training in enumerate(config.trainings):
        try:
            model = build_experiment_model(config, training)
            if training.evaluate_over_time:
                _deployed(config, training, model)
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:
            key = f"trainings[{k}].tile" if training.mode != "digital" or training.tile is not None else f"trainings[{k}]"
            raise ConfigError(f"{key}: {' '.join(str(err).split())}") from None


def _deployed(config: ExperimentConfig, training: TrainingConfig, model: nn.Module) -> nn.Module:
    """The trained model on its chip: a digital model is converted with the training's tile."""
    from analogkit.nn import convert_to_analog

    if training.mode == "digital":
        return convert_to_analog(model, training.resolved_tile_or_none(), exclude=config.model.exclude)
    return model


def _optimizer(training: TrainingConfig, model: nn.Module) -> torch.optim.Optimizer:
    from analogkit.optim import AnalogSGD

    if training.mode == "on_chip":
        return AnalogSGD(model.parameters(), lr=training.lr, momentum=training.momentum)
    return torch.optim.SGD(model.parameters(), lr=training.lr, momentum=training.momentum)


def _loaders(config: ExperimentConfig) -> tuple[Any, Any]:
    from analogkit.data import build_loaders

    data = config.data
    if data.root is not None and not Path(data.root).expanduser().is_dir():
        raise ConfigError(f"data.root: {data.root!r} is not allowed; use a folder that exists and holds the "
                          f"{data.name} files")
    root = None if data.root is None else str(Path(data.root).expanduser())
    try:
        return build_loaders(data.name, root=root, batch_size=data.batch_size, seed=config.seed, **data.options)
    except TypeError as err:
        raise ConfigError(f"data.options: {data.options!r} is not allowed for {data.name!r} ({err})") from None
    except (ValueError, OSError) as err:
        key = "data.root" if data.root is not None else "data"
        raise ConfigError(f"{key}: {' '.join(str(err).split())}") from None


# -- metrics files ---------------------------------------------------------------------------------------
CSV_FIELDS = ("training", "mode", "kind", "epoch", "t_seconds", "train_loss", "test_accuracy",
              "accuracy_mean", "accuracy_std", "seconds")


def _write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    _atomic_write_bytes(folder / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for name, result in metrics["trainings"].items():
        for row in result.get("history", []):
            writer.writerow({"training": name, "mode": result["mode"], "kind": "epoch", "epoch": row["epoch"],
                             "train_loss": row["train_loss"], "test_accuracy": row["test_accuracy"],
                             "seconds": row["seconds"]})
        over = result.get("over_time")
        if over:
            for t, m, s in zip(over["times"], over["mean"], over["std"]):
                writer.writerow({"training": name, "mode": result["mode"], "kind": "over_time", "t_seconds": t,
                                 "accuracy_mean": m, "accuracy_std": s})
    _atomic_write_bytes(folder / "metrics.csv", out.getvalue().encode())


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# -- the run -----------------------------------------------------------------------------------------------
def run_experiment(
    config: ExperimentConfig | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> RunResult:
    """Run ``config`` (default: the demo) into the folder ``out`` (default ``runs/<timestamp>``).

    With ``resume=True``, ``out`` must hold an interrupted (or finished) run: its ``config.yaml``
    is used (``config``, if given, must resolve to the same), finished trainings are kept and the
    interrupted one continues from its last checkpoint. Raises :class:`ConfigError` for a bad config
    or folder; ``KeyboardInterrupt`` propagates after the metrics so far are saved.
    """
    show = progress_enabled() if progress is None else progress
    original = config
    if resume:
        if out is None:
            raise ConfigError("--resume: which run? use --out DIR with the folder of the run to continue")
        folder = Path(out)
        if not (folder / "config.yaml").is_file():
            raise ConfigError(f"--out: {str(folder)!r} holds no run to resume (no config.yaml); "
                              "use the folder of an earlier run")
        resolved = load_experiment(folder / "config.yaml")
        if config is not None:
            differences = config.resolved().diff(resolved)
            if differences:
                raise ConfigError(f"config: differs from the run's config.yaml in {str(folder)!r} "
                                  f"({differences[0]}{', …' if len(differences) > 1 else ''}); resume without a "
                                  "config file, or start a new run with another --out")
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    else:
        config = ExperimentConfig() if config is None else config
        resolved = config.resolved()
        folder = Path(out) if out is not None else default_run_folder()
        if (folder / "config.yaml").exists():
            raise ConfigError(f"--out: {str(folder)!r} already holds a run; use --resume to continue it, "
                              "or another folder")
        metrics = None
    train_loader, test_loader = _loaders(resolved)  # checks the data folder before anything is written
    _preflight(resolved)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoints").mkdir(exist_ok=True)
    (folder / "plots").mkdir(exist_ok=True)
    if not resume:
        (folder / "config.yaml").write_text(
            f"# analogkit {analogkit.__version__}: the fully resolved experiment of this run "
            "(analogkit run this-file.yaml repeats it)\n" + resolved.to_yaml()
        )
    originals = {t.name: t for t in original.trainings} if original is not None else {}
    if metrics is None:
        metrics = {
            "experiment": resolved.name,
            "analogkit_version": analogkit.__version__,
            "torch_version": torch.__version__,
            "status": "running",
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "trainings": {},
        }
    for t in resolved.trainings:
        entry = metrics["trainings"].setdefault(t.name, {})
        entry.setdefault("mode", t.mode)
        entry.setdefault("chip", _tile_label(originals.get(t.name), t))
        entry.setdefault("epochs", t.epochs)
        entry.setdefault("history", [])
        entry.setdefault("complete", False)
    metrics["status"] = "running"
    _write_metrics(folder, metrics)

    threads_before = torch.get_num_threads()
    if resolved.threads > 0:
        torch.set_num_threads(resolved.threads)
    start = time.perf_counter()
    n_train = len(train_loader.dataset)  # type: ignore[arg-type]
    n_test = len(test_loader.dataset)  # type: ignore[arg-type]
    log(f"analogkit run {resolved.name!r}: {resolved.data.name} ({n_train} train / {n_test} test samples), "
        f"{resolved.model.name}, {len(resolved.trainings)} trainings, seed {resolved.seed} -> {folder}")
    try:
        for k, training in enumerate(resolved.trainings):
            _run_training(resolved, k, training, folder, metrics, log, show)
        metrics["status"] = "plotting"
        _write_metrics(folder, metrics)
        from analogkit.experiments.report import write_outputs

        files = write_outputs(folder, resolved, metrics, log=log)
    except KeyboardInterrupt as err:
        metrics["status"] = "interrupted"
        _write_metrics(folder, metrics)
        err.run_folder = folder  # type: ignore[attr-defined]  # for the caller's "resume with" hint
        raise
    finally:
        torch.set_num_threads(threads_before)
    metrics["status"] = "complete"
    metrics["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    _write_metrics(folder, metrics)
    _summary(resolved, metrics, log)
    log(f"done in {time.perf_counter() - start:.0f} s; report: {folder / 'report.html'}")
    return RunResult(folder, resolved, metrics, files)


def _describe(training: TrainingConfig, chip: str | None) -> str:
    if training.mode == "digital":
        text = f"digital training, SGD lr {training.lr:g}"
        return text + (f"; deployed on {chip}" if chip else "")
    if training.mode == "hardware_aware":
        return f"hardware-aware training on {chip}, SGD lr {training.lr:g}"
    return f"on-chip training, {chip}, lr {training.lr:g}"


def _run_training(
    config: ExperimentConfig,
    k: int,
    training: TrainingConfig,
    folder: Path,
    metrics: dict[str, Any],
    log: Callable[[str], None],
    show: bool,
) -> None:
    from analogkit.analysis import evaluate_over_time
    from analogkit.nn.base import seed_tiles

    entry = metrics["trainings"][training.name]
    n = len(config.trainings)
    prefix = f"[{k + 1}/{n}] {training.name}"
    if entry.get("complete"):
        log(f"{prefix}: already done (test accuracy {_pct(entry['test_accuracy'])})")
        return
    ckpt = folder / "checkpoints"
    state_path = ckpt / f"{training.name}.state.pt"
    final_path = ckpt / f"{training.name}.pt"
    model = build_experiment_model(config, training)
    optimizer = _optimizer(training, model)
    train_loader, test_loader = _loaders(config)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], train_loader)
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        log(f"{prefix}: resuming after epoch {start_epoch}/{training.epochs}")
    log(f"{prefix}: {_describe(training, entry.get('chip'))}, {training.epochs} epochs")
    limit_train, limit_test = config.data.train_batches, config.data.test_batches
    epochs = tqdm(range(start_epoch, training.epochs), desc=f"{training.name} epochs", leave=False,
                  disable=not show, initial=start_epoch, total=training.epochs)
    for epoch in epochs:
        t0 = time.perf_counter()
        loss = train_epoch(model, train_loader, optimizer, desc=f"epoch {epoch + 1}/{training.epochs}",
                           progress=show, max_batches=limit_train)
        accuracy = evaluate(model, test_loader, max_batches=limit_test)
        history.append({"epoch": epoch + 1, "train_loss": float(loss), "test_accuracy": float(accuracy),
                        "seconds": round(time.perf_counter() - t0, 3)})
        epochs.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * accuracy:.1f}%")
        entry["history"] = history  # before the checkpoint: an interrupt right after it reports this epoch
        _atomic_save({
            "format": STATE_FORMAT,
            "training": training.name,
            "epoch": epoch + 1,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(train_loader),
            "history": history,
        }, state_path)
        _write_metrics(folder, metrics)
    epochs.close()
    if not history:  # resumed a training whose every epoch was done
        history = entry["history"]
    _atomic_save(model.state_dict(), final_path)
    last = history[-1]
    entry["test_accuracy"] = last["test_accuracy"]
    entry["train_loss"] = last["train_loss"]
    entry["train_seconds"] = round(sum(h["seconds"] for h in history), 3)
    log(f"{prefix}: train loss {last['train_loss']:.3f}, test accuracy {_pct(last['test_accuracy'])} "
        f"({entry['train_seconds']:.1f} s)")
    if training.evaluate_over_time:
        t0 = time.perf_counter()
        chip = _deployed(config, training, model)
        seed_tiles(chip, config.seed + EVAL_SEED_STRIDE * (k + 1))
        times = config.inference.times
        result = evaluate_over_time(
            chip, LimitedLoader(test_loader, limit_test), times, repeats=config.inference.repeats, progress=show,
        )
        entry["over_time"] = {"times": result.times, "mean": result.mean, "std": result.std, "values": result.values}
        cells = ", ".join(f"{time_label(t)} {100 * m:.1f} ± {100 * s:.1f}%" for t, m, s in zip(times, result.mean, result.std))
        log(f"{prefix}: on the chip ({config.inference.repeats} programmings, "
            f"{time.perf_counter() - t0:.1f} s): {cells}")
    entry["complete"] = True
    _write_metrics(folder, metrics)


def _summary(config: ExperimentConfig, metrics: dict[str, Any], log: Callable[[str], None]) -> None:
    times = config.inference.times
    any_time = any(metrics["trainings"][t.name].get("over_time") for t in config.trainings)
    width = max(len(t.name) for t in config.trainings) + 2
    header = f"{'training':<{width}}{'mode':<16}{'test acc':>9}"
    if any_time:
        header += "".join(f"{time_label(t):>15}" for t in times)
    log("")
    log(header)
    log("-" * len(header))
    for t in config.trainings:
        entry = metrics["trainings"][t.name]
        line = f"{t.name:<{width}}{t.mode:<16}{_pct(entry['test_accuracy']):>9}"
        over = entry.get("over_time")
        if any_time:
            if over:
                line += "".join(f"{f'{100 * m:.1f} ± {100 * s:.1f}':>15}" for m, s in zip(over["mean"], over["std"]))
            else:
                line += f"{'(not evaluated over time)':>{15 * len(times)}}"
        log(line)
    log("")
