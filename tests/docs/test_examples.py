"""The scripts in examples/ run (with small settings) and print what their docstrings promise."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(script, *args, cwd=ROOT):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


MINE = ("convert_and_drift.py", "train_tiki_taka.py", "custom_device.py", "hwa_resnet_cifar10.py")


def test_examples_have_a_docstring_with_their_command():
    for script in (EXAMPLES / name for name in MINE):
        text = script.read_text()
        assert text.startswith('"""'), script.name
        assert f"python examples/{script.name}" in text, script.name


@pytest.mark.slow  # a subprocess per script; run by `make test-all`
def test_convert_and_drift():
    out = run("convert_and_drift.py", "--epochs", "2", "--repeats", "2")
    assert "digital test accuracy" in out
    rows = [line for line in out.splitlines() if line.startswith(("global", "none"))]
    assert len(rows) == 2 and all(row.count("±") == 5 for row in rows)


@pytest.mark.slow  # a subprocess per script; run by `make test-all`
def test_train_tiki_taka():
    from analogkit.experiments.presets import algorithm_names

    out = run("train_tiki_taka.py", "--epochs", "1")
    assert "sgd on reram_sb" in out and "test accuracy" in out
    if "tiki-taka" in algorithm_names():
        assert "tiki-taka on reram_sb (TransferCompound)" in out


@pytest.mark.slow  # a subprocess per script; run by `make test-all`
def test_custom_device(tmp_path):
    out = run("custom_device.py", "--out", str(tmp_path), "--epochs", "1")
    assert "kind: hfox_reram_example" in out and "epoch 1:" in out
    assert (tmp_path / "custom_device.png").read_bytes()[:4] == b"\x89PNG"


def write_tiny_cifar(folder: Path, per_batch: int = 6) -> None:
    """CIFAR-10 python batches of random images (the official files' format: pickled dicts)."""
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"data": rng.randint(0, 256, (per_batch, 3072)).astype(np.uint8),
                 b"labels": rng.randint(0, 10, per_batch).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_hwa_resnet_cifar10_on_tiny_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_tiny_cifar(folder)
    out = run("hwa_resnet_cifar10.py", str(tmp_path), "--epochs", "1", "--batch-size", "8", "--max-batches", "2",
              "--repeats", "1", "--threads", "1")
    assert "epoch 1: train loss" in out
    assert "1 year after programming" in out


def test_hwa_resnet_cifar10_without_files_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "hwa_resnet_cifar10.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "data_batch_1" in proc.stderr
