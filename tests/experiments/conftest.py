"""Small experiment configs shared by the experiment tests."""

import pytest

from analogkit.experiments.config import ExperimentConfig, load_experiment

TINY_YAML = """
name: tiny
seed: 3
threads: 1
data: {name: digits, batch_size: 32, train_batches: 4, test_batches: 2}
model: {name: mlp, options: {hidden: [8]}}
trainings:
  - {name: digital, mode: digital, tile: pcm_chip, epochs: 2, lr: 0.1, momentum: 0.9}
  - {name: hwa, mode: hardware_aware, tile: pcm_hwa, epochs: 2, lr: 0.1}
  - {name: chip, mode: on_chip, algorithm: sgd, device: reram_sb, epochs: 2, lr: 0.1, over_time: false}
inference: {times: [1, 86400], repeats: 2}
"""


@pytest.fixture
def tiny() -> ExperimentConfig:
    """Three trainings (digital, hardware-aware, on-chip) of an MLP 64-8-10 on a few digits batches."""
    return load_experiment(TINY_YAML)
