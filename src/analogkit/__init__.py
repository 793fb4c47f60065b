"""analogkit: simulate analog in-memory computing hardware for deep learning, in pure PyTorch."""

from analogkit.random import manual_seed

__version__ = "0.1.0"

__all__ = ["manual_seed", "__version__"]
