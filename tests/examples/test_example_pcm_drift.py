"""The PCM reference experiment runs end to end (short settings) and writes its table and plot."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_pcm_drift_example_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pcm_drift_digits.py"), "--repeats", "2", "--epochs", "3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "1 year" in out.stdout and "hardware-aware" in out.stdout
    rows = list(csv.DictReader(open(tmp_path / "pcm_drift_digits.csv")))
    assert len(rows) == 2 * 2 * 5
    assert (tmp_path / "pcm_drift_digits.png").stat().st_size > 10_000
