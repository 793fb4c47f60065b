"""`analogkit run`, `presets` and `config show` end to end: run folder, report in a browser, bad
configs, Ctrl-C and --resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from analogkit.cli import main

CHROMIUM = "/usr/bin/chromium"
VOLATILE = {"seconds", "started", "finished", "train_seconds"}


def strip(obj):
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def cli(*args, cwd=None, timeout=300):
    """Run the command in a fresh interpreter (as a user would), capturing its output."""
    return subprocess.run([sys.executable, "-m", "analogkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# -- the report in a browser ---------------------------------------------------------------------------
IMAGE_CHECK = (
    '<script>window.addEventListener("load", function () {'
    " var all = Array.from(document.images);"
    " var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;"
    ' document.body.setAttribute("data-images", ok + "/" + all.length); });</script>'
)


def images_rendered(report: Path, tmp_path: Path) -> str:
    """Open a copy of the report with a small image check in headless Chromium; return 'ok/total'."""
    page = tmp_path / "check.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r'data-images="(\d+/\d+)"', out.stdout)
    assert match, f"Chromium did not run the page's script: {out.stderr[-2000:]}"
    return match.group(1)


def test_quick_default_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and f"report: {out / 'report.html'}" in result.output
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    metrics = json.loads((out / "metrics.json").read_text())
    names = list(metrics["trainings"])
    assert [metrics["trainings"][n]["mode"] for n in names] == ["digital", "hardware_aware", "on_chip"]
    expected = {"config.yaml", "metrics.json", "metrics.csv", "report.html", "plots/training_curves.png",
                "plots/accuracy_over_time.png", "plots/weight_distributions.png", "plots/device_response.png"}
    expected |= {f"checkpoints/{n}.pt" for n in names} | {f"checkpoints/{n}.state.pt" for n in names}
    assert files == expected
    assert metrics["status"] == "complete"
    assert (out / "metrics.csv").read_text().startswith("training,mode,kind,epoch")
    assert "trainings:" in (out / "config.yaml").read_text()
    for name in names:
        state = torch.load(out / "checkpoints" / f"{name}.pt", weights_only=True)
        assert any(k.endswith("_extra_state") for k in state) or name == "digital"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == 4 and html.count('src="data:image/png;base64,') == 4
    # self-contained: no resource is fetched from anywhere (only inline data)
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium); the report was checked "
                    "as text only")
    assert images_rendered(out / "report.html", tmp_path) == "4/4"


# -- bad configs ---------------------------------------------------------------------------------------
BAD = [
    ("trainings: [{name: a, mode: hardware_aware, tile: pcm_chipp}]", "trainings[0].tile: 'pcm_chipp' is not allowed"),
    ("trainings: [{name: a, mode: on_chip, device: unobtainium}]", "trainings[0].device: 'unobtainium' is not allowed"),
    ("trainings: [{name: a, epochs: many}]", "trainings[0].epochs: 'many' is not allowed; use an integer"),
    ("seed: 1.5", "seed: 1.5 is not allowed; use an integer >= 0"),
    ("trainings: [{name: a, lr: -1}]", "trainings[0].lr: -1.0 is not allowed; use a learning rate > 0"),
    ("inference: {repeats: 0}", "inference.repeats: 0 is not allowed"),
    ("data: {name: mnist, root: /no/such/folder}", "data.root: '/no/such/folder' is not allowed; use a folder that exists"),
    ("data: {name: cifar10}", "data.root: None is not allowed"),
    ("trainings: [{name: a, mode: hardware_aware, tile: {forward: {out_res: -3}}}]",
     "trainings[0].tile.forward.out_res: -3.0 is not allowed"),
    ("model: {name: mlp, options: {hidden: [8], width: 3}}", "model.options: "),
    ("trainings: {name: a", "not valid YAML"),
]


@pytest.mark.parametrize("text, expected", BAD)
def test_bad_config_is_one_line_and_exit_2(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    text_out = result.output.strip()
    assert len(text_out.splitlines()) == 1, text_out
    assert text_out.startswith("analogkit: error: ") and expected in text_out, text_out
    assert "Traceback" not in text_out
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_bad_config_in_a_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainings: [{name: a, mode: on_chip, algorithm: sgd, device: reram_sbb}]\n")
    proc = cli("run", str(path), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("analogkit: error: trainings[0].device: 'reram_sbb' is not allowed; use one of")
    missing = CliRunner().invoke(main, ["run", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_resume_needs_a_run_folder(tmp_path):
    result = CliRunner().invoke(main, ["run", "--resume"])
    assert result.exit_code == 2 and "--out DIR" in result.output
    result = CliRunner().invoke(main, ["run", "--resume", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not allowed" in result.output


# -- presets and config show -----------------------------------------------------------------------------
def test_presets_lists_every_kind_with_a_source():
    from analogkit.devices import DEVICE_PRESETS
    from analogkit.experiments.presets import TILE_PRESETS, algorithm_presets

    result = CliRunner().invoke(main, ["presets"])
    assert result.exit_code == 0
    rows = [line.split(maxsplit=2) for line in result.output.strip().splitlines()]
    assert all(len(r) == 3 and len(r[2]) > 20 for r in rows)
    by_kind = {}
    for kind, name, _ in rows:
        by_kind.setdefault(kind, []).append(name)
    assert by_kind["device"] == list(DEVICE_PRESETS)
    assert by_kind["inference"] == list(TILE_PRESETS)
    assert by_kind["algorithm"] == [r.name for r in algorithm_presets()]
    assert by_kind["experiment"] == ["demo"]
    only = CliRunner().invoke(main, ["presets", "--kind", "inference"])
    assert {line.split()[0] for line in only.output.strip().splitlines()} == {"inference"}


def test_config_show_prints_yaml_to_start_from(tmp_path):
    from analogkit.config import TileConfig
    from analogkit.devices import device_from_dict
    from analogkit.experiments.config import ExperimentConfig, load_experiment

    import yaml

    demo = CliRunner().invoke(main, ["config", "show", "demo"])
    assert demo.exit_code == 0 and load_experiment(demo.output) == ExperimentConfig()
    chip = CliRunner().invoke(main, ["config", "show", "pcm_hwa"])
    assert TileConfig.from_yaml(chip.output).modifier.type == "mult_normal"
    device = CliRunner().invoke(main, ["config", "show", "reram_sb"])
    assert device_from_dict(yaml.safe_load(device.output)).dw_min == 0.002
    unknown = CliRunner().invoke(main, ["config", "show", "reram_sbb"])
    assert unknown.exit_code == 2 and "unknown preset 'reram_sbb'" in unknown.output


# -- Ctrl-C and --resume ---------------------------------------------------------------------------------
SIGINT_CONFIG = """
name: interrupt
seed: 5
threads: 1
data: {name: digits, batch_size: 32, train_batches: 15, test_batches: 4}
model: {name: mlp, options: {hidden: [16]}}
trainings:
  - {name: chip, mode: on_chip, algorithm: sgd, device: reram_sb, epochs: 3, lr: 0.1}
  - {name: hwa, mode: hardware_aware, tile: pcm_hwa, epochs: 3, lr: 0.05, momentum: 0.9}
inference: {times: [1, 3600], repeats: 1}
"""


def test_sigint_keeps_checkpoint_and_resume_gives_the_uninterrupted_result(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(SIGINT_CONFIG)
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    cmd = [sys.executable, "-m", "analogkit.cli", "run", str(config), "--out"]
    reference = subprocess.Popen([*cmd, str(reference_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen([*cmd, str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = run_dir / "checkpoints" / "chip.state.pt"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.exists(), "no checkpoint after the first epoch"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and f"--resume --out {run_dir}" in err and "Traceback" not in err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and not (run_dir / "report.html").exists()
    assert len(metrics["trainings"]["chip"]["history"]) >= 1
    state = torch.load(first, weights_only=True)
    assert state["epoch"] >= 1 and set(state) >= {"model", "optimizer", "rng", "history"}

    resumed = cli("run", "--resume", "--out", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    unfinished = [n for n, e in metrics["trainings"].items() if not e["complete"]]
    assert not unfinished or "resuming after epoch" in resumed.stdout or "hwa: hardware-aware" in resumed.stdout
    assert reference.wait(timeout=300) == 0
    ref_metrics = json.loads((reference_dir / "metrics.json").read_text())
    new_metrics = json.loads((run_dir / "metrics.json").read_text())
    assert strip(new_metrics) == strip(ref_metrics)
    for name in ("chip", "hwa"):
        a = torch.load(reference_dir / "checkpoints" / f"{name}.pt", weights_only=True)
        b = torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key], b[key]), (name, key)
            else:
                assert a[key]["config"] == b[key]["config"], (name, key)
                assert torch.equal(a[key]["generator_state"], b[key]["generator_state"]), (name, key)
    assert (run_dir / "report.html").is_file()
