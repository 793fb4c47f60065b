"""Experiments: training and evaluation loops, the default job, reports."""

from analogkit.experiments.training import evaluate, train_epoch

__all__ = ["evaluate", "train_epoch"]
