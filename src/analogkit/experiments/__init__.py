"""Experiments: training and evaluation loops, experiment configs, the runner behind ``analogkit run``,
plots and the HTML report.

- :mod:`~analogkit.experiments.training`: ``train_epoch`` / ``evaluate`` loops with progress bars.
- :mod:`~analogkit.experiments.config`: :class:`ExperimentConfig` (YAML round-trip, one-line errors).
- :mod:`~analogkit.experiments.presets`: tile, algorithm and experiment presets by name.
- :mod:`~analogkit.experiments.runner`: :func:`run_experiment` — a run folder with the resolved
  config, metrics, checkpoints, plots and report; interruptible and resumable.
- :mod:`~analogkit.experiments.plots`, :mod:`~analogkit.experiments.report`: figures and the report.
"""

from analogkit.experiments.training import LimitedLoader, evaluate, train_epoch

__all__ = [
    "evaluate",
    "train_epoch",
    "LimitedLoader",
    "ExperimentConfig",
    "DataConfig",
    "ModelConfig",
    "TrainingConfig",
    "InferenceConfig",
    "ConfigError",
    "load_experiment",
    "run_experiment",
    "RunResult",
]

_LAZY = {
    "ExperimentConfig": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "TrainingConfig": "config",
    "InferenceConfig": "config",
    "ConfigError": "config",
    "load_experiment": "config",
    "run_experiment": "runner",
    "RunResult": "runner",
}


def __getattr__(name: str):  # noqa: ANN202 - lazy: the runner sits above analysis/, which imports training
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"analogkit.experiments.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'analogkit.experiments' has no attribute {name!r}")
