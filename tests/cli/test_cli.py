"""The analogkit command: help, info, device list and plot (``analogkit run``: test_cli_run.py)."""

from click.testing import CliRunner

from analogkit.cli import main


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output and "run" in result.output


def test_info_prints_versions_and_threads():
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0
    for word in ("analogkit", "torch", "device", "threads"):
        assert word in result.output


def test_bad_option_exits_with_usage_error():
    result = CliRunner().invoke(main, ["run", "--epochs", "0"])
    assert result.exit_code == 2 and "epochs" in result.output


def test_device_list_names_every_preset_with_a_source():
    from analogkit.devices import DEVICE_PRESETS

    result = CliRunner().invoke(main, ["device", "list"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(DEVICE_PRESETS)
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)


def test_device_plot_preset_and_yaml_file(tmp_path):
    from analogkit.devices import build_preset

    out = tmp_path / "dev.png"
    result = CliRunner().invoke(main, ["device", "plot", "reram_sb", "-o", str(out), "--pulses", "50", "--traces", "2"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    cfg = tmp_path / "mine.yaml"
    dev = build_preset("capacitor")
    cfg.write_text(dev.to_yaml() if "kind" in dev.to_dict() else "kind: " + dev.kind + "\n" + dev.to_yaml())
    out2 = tmp_path / "mine.png"
    result = CliRunner().invoke(main, ["device", "plot", str(cfg), "-o", str(out2), "--pulses", "40"])
    assert result.exit_code == 0, result.output
    assert out2.exists()


def test_device_plot_unknown_name_is_a_usage_error():
    result = CliRunner().invoke(main, ["device", "plot", "unobtainium"])
    assert result.exit_code == 2 and "unknown device preset 'unobtainium'" in result.output
