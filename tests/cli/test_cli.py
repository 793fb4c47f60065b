"""The analogkit command: help, info, and the default run on bundled data (short)."""

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


def test_run_trains_on_digits_and_reports_accuracy():
    result = CliRunner().invoke(main, ["run", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "test accuracy" in line]
    assert len(lines) == 2
    accuracy = float(lines[1].split("test accuracy")[1].split("%")[0])
    assert accuracy > 80.0  # 3 epochs of an MLP on digits through the default analog periphery


def test_bad_option_exits_with_usage_error():
    result = CliRunner().invoke(main, ["run", "--epochs", "0"])
    assert result.exit_code == 2 and "epochs" in result.output
