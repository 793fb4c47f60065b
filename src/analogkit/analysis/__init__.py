"""Analyses of analog models: accuracy over time after programming, noise-robustness sweeps."""

from analogkit.analysis.robustness import AWGNSweep, OverTime, awgn_sweep, evaluate_over_time

__all__ = ["AWGNSweep", "OverTime", "awgn_sweep", "evaluate_over_time"]
