"""Progress bars: on a terminal, a bar on stderr while long work runs; piped or redirected (as in these
tests and in scripts), no bar and no control codes anywhere; stdout carries the command's data either way."""

import io
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from tbml import cli as cli_module
from tbml.cli import cli

ESCAPE = "\x1b"


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal 100 columns wide: what rich draws there lands in the returned buffer."""
    screen = io.StringIO()
    monkeypatch.setattr(cli_module, "_progress_console",
                        lambda: Console(file=screen, force_terminal=True, width=100, color_system="standard"))
    return screen


def test_piped_there_is_no_bar_and_stdout_holds_only_the_data(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["generate", "--invoices", "300", "--seed", "2", "-o", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and result.stdout.startswith("300 invoices and ")
    result = runner.invoke(cli, ["score", str(tmp_path / "data" / "invoices.csv"), "--transfers",
                                 str(tmp_path / "data" / "transfers.csv"), "-o", str(tmp_path / "run"), "--top", "1"])
    assert result.exit_code == 0, result.output
    assert ESCAPE not in result.stdout and ESCAPE not in result.stderr
    stages = [line for line in result.stderr.splitlines() if not line.startswith("  note:")]
    assert all(re.fullmatch(r"  [a-z ]+: \d+\.\d s", line) for line in stages) and len(stages) >= 4
    assert "load and validate" not in result.stdout


def test_on_a_terminal_a_bar_runs_on_stderr_with_each_stage_above_it(tmp_path, terminal):
    runner = CliRunner()
    result = runner.invoke(cli, ["generate", "--invoices", "300", "--seed", "2", "-o", str(tmp_path / "data")])
    assert result.exit_code == 0 and "generating 300 invoices" in terminal.getvalue()
    screen_before = len(terminal.getvalue())
    result = runner.invoke(cli, ["score", str(tmp_path / "data" / "invoices.csv"), "--transfers",
                                 str(tmp_path / "data" / "transfers.csv"), "-o", str(tmp_path / "run"), "--top", "1"])
    assert result.exit_code == 0, result.output
    drawn = terminal.getvalue()[screen_before:]
    assert "scoring invoices.csv" in drawn and ESCAPE in drawn  # the bar, drawn with control codes
    assert re.search(r"  load and validate: \d+\.\d s", drawn) and re.search(r"  fit and score: \d+\.\d s", drawn)
    # the stages went to the terminal instead of plain stderr; stdout is the data, as when piped
    assert "load and validate" not in result.stderr and ESCAPE not in result.stdout
    assert re.match(r".*invoices.csv: 300 rows in, \d+ scored, \d+ quarantined\n", result.stdout)


def test_numbered_steps_fill_the_bar(terminal):
    with cli_module._progress("a batch") as say:
        say("[1/4] first.csv")
        say("  scored: 10 rows in")
        say("[3/4] third.csv")
    drawn = terminal.getvalue()
    assert "0/4 done" in drawn and "2/4 done" in drawn  # before each numbered step, the steps done
    assert "[1/4] first.csv" in drawn and "  scored: 10 rows in" in drawn  # lines printed above the bar
