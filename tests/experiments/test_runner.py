"""The experiment runner: run folder contents, interruption and resume, folder and data errors.

All runs use the tiny config of conftest.py (a few digits batches, 2 epochs per training), so
each takes a few seconds; the checks are exact (same seed, same threads → identical numbers).
"""

import csv
import json

import pytest
import torch

import analogkit.experiments.runner as runner
from analogkit.experiments.config import ConfigError, load_experiment
from analogkit.experiments.runner import run_experiment

VOLATILE = {"seconds", "started", "finished", "train_seconds"}


def strip(obj):
    """Metrics without wall-clock times."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def assert_same_state(a, b, where=""):
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_run_folder_holds_everything(tiny, tmp_path):
    lines = []
    result = run_experiment(tiny, tmp_path / "run", log=lines.append, progress=False)
    folder = result.folder
    names = [t.name for t in tiny.trainings]
    expected = {"config.yaml", "metrics.json", "metrics.csv", "report.html",
                "plots/training_curves.png", "plots/accuracy_over_time.png", "plots/weight_distributions.png",
                "plots/device_response.png"}
    expected |= {f"checkpoints/{n}.pt" for n in names} | {f"checkpoints/{n}.state.pt" for n in names}
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert found == expected
    assert load_experiment(folder / "config.yaml") == tiny.resolved()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    for name in names:
        entry = metrics["trainings"][name]
        assert entry["complete"] and len(entry["history"]) == 2 and 0 <= entry["test_accuracy"] <= 1
    assert "over_time" in metrics["trainings"]["hwa"] and "over_time" not in metrics["trainings"]["chip"]
    assert metrics["trainings"]["hwa"]["over_time"]["times"] == [1.0, 86400.0]
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert sum(r["kind"] == "epoch" for r in rows) == 6 and sum(r["kind"] == "over_time" for r in rows) == 4
    for png in folder.glob("plots/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for ckpt in folder.glob("checkpoints/*.pt"):
        torch.load(ckpt, weights_only=True)  # plain tensors and data only
    state = torch.load(folder / "checkpoints" / "chip.state.pt", weights_only=True)
    assert state["epoch"] == 2 and {"torch", "loader", "python", "numpy"} <= set(state["rng"])
    assert any("test accuracy" in line for line in lines) and "report:" in lines[-1]


def test_interrupted_run_resumes_to_the_same_result(tiny, tmp_path, monkeypatch):
    reference = run_experiment(tiny, tmp_path / "reference", log=lambda s: None, progress=False)

    calls = {"n": 0}
    real = runner.train_epoch

    def interrupt_in_third_epoch(*args, **kwargs):  # the hwa training's second epoch
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "train_epoch", interrupt_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny, tmp_path / "run", log=lambda s: None, progress=False)
    folder = tmp_path / "run"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    assert metrics["trainings"]["digital"]["complete"]
    assert len(metrics["trainings"]["hwa"]["history"]) == 1 and not metrics["trainings"]["hwa"]["complete"]
    assert (folder / "checkpoints" / "hwa.state.pt").is_file() and not (folder / "report.html").exists()

    monkeypatch.setattr(runner, "train_epoch", real)
    resumed = run_experiment(None, folder, resume=True, log=lambda s: None, progress=False)
    assert strip(resumed.metrics) == strip(reference.metrics)
    for t in tiny.trainings:
        a = torch.load(reference.folder / "checkpoints" / f"{t.name}.pt", weights_only=True)
        b = torch.load(folder / "checkpoints" / f"{t.name}.pt", weights_only=True)
        assert_same_state(a, b, t.name)


def test_folder_and_resume_errors(tiny, tmp_path):
    with pytest.raises(ConfigError, match="holds no run to resume"):
        run_experiment(None, tmp_path / "empty", resume=True, log=lambda s: None)
    with pytest.raises(ConfigError, match="which run"):
        run_experiment(None, None, resume=True, log=lambda s: None)
    quick = tiny.replace(trainings=tiny.trainings[:1])
    run_experiment(quick, tmp_path / "run", log=lambda s: None, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        run_experiment(quick, tmp_path / "run", log=lambda s: None)
    other = quick.replace(seed=99)
    with pytest.raises(ConfigError, match=r"^config: differs from the run's config.yaml .*seed: 99 vs 3"):
        run_experiment(other, tmp_path / "run", resume=True, log=lambda s: None)
    again = run_experiment(quick, tmp_path / "run", resume=True, log=lambda s: None, progress=False)
    assert again.metrics["status"] == "complete"


def test_missing_data_folder_is_a_config_error(tmp_path):
    cfg = load_experiment(f"data: {{name: mnist, root: {tmp_path / 'no_such_folder'}}}\n")
    with pytest.raises(ConfigError, match=r"^data.root: '.*no_such_folder' is not allowed; use a folder that exists"):
        run_experiment(cfg, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_experiment(f"data: {{name: mnist, root: {empty}}}\n")
    with pytest.raises(ConfigError, match=r"^data.root: "):
        run_experiment(cfg, tmp_path / "run", log=lambda s: None)


def test_progress_bars_for_epochs_batches_and_repeats_only_when_asked(tiny, tmp_path, capsys):
    one = tiny.replace(trainings=tiny.trainings[1:2])  # hardware-aware: epochs, batches, repeats
    run_experiment(one, tmp_path / "quiet", log=lambda s: None, progress=False)
    assert capsys.readouterr().err == ""
    run_experiment(one, tmp_path / "bars", log=lambda s: None, progress=True)
    err = capsys.readouterr().err
    assert "hwa epochs" in err and "epoch 1/2" in err and "repeats" in err
