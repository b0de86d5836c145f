"""The output side and whole-file mistakes: one line each, files untouched, no stale outputs, every row
accounted for, zero values scored, tiny files said to be tiny."""

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tbml import api, batch
from tbml.cli import cli
from tbml.errors import OutputError

from .conftest import DATA

BAD = DATA / "bad" / "output"
CORPUS = DATA / "bad" / "corpus"
EVIL = '=HYPERLINK("http://attacker.invalid","open")'


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """300 generated invoices with transfers (seed 3)."""
    root = tmp_path_factory.mktemp("sample")
    api.generate_files(root, n_invoices=300, seed=3, laundering_rate=0.04)
    return root


def _one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "Traceback" not in result.output and lines[-1].startswith("Error: ")
    assert all(line.startswith("  ") for line in lines[:-1])  # only the stage times before it
    for word in words:
        assert word in lines[-1], result.output


def test_out_below_a_file_is_one_line(sample, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    result = CliRunner().invoke(cli, ["score", str(sample / "invoices.csv"), "-o", str(blocker / "out")])
    _one_line_error(result, f"{blocker / 'out'}: cannot write outputs here: {blocker} is a file, not a folder")
    assert blocker.read_text() == "mine"
    result = CliRunner().invoke(cli, ["validate", str(sample / "invoices.csv"), "-o", str(blocker)])
    assert result.exit_code == 2 and "is a file" in result.output  # -o FILE itself: click's usage error
    with pytest.raises(OutputError, match="notes.txt: cannot write outputs here: is a file"):
        api.validate_files(sample / "invoices.csv", out_dir=blocker)


def test_a_full_disk_is_one_line_and_leaves_the_previous_run(sample, tmp_path, monkeypatch):
    out = tmp_path / "out"
    api.score_files(sample / "invoices.csv", sample / "transfers.csv", out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    result = CliRunner().invoke(cli, ["score", str(sample / "invoices.csv"), "-o", str(out)])
    monkeypatch.undo()
    _one_line_error(result, str(out), "cannot write: no space left on device")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging left, nothing half-replaced


def test_a_corrupt_alerts_parquet_is_one_line(sample, tmp_path):
    out = tmp_path / "run"
    api.score_files(sample / "invoices.csv", out_dir=out)
    (out / "alerts.parquet").write_bytes((out / "alerts.parquet").read_bytes()[:200])
    result = CliRunner().invoke(cli, ["report", str(out)])
    _one_line_error(result, f"{out / 'alerts.parquet'}: not a readable Parquet file", "score the files again")
    (out / "alerts.parquet").write_bytes(b"PAR1 not really")
    _one_line_error(CliRunner().invoke(cli, ["report", str(out)]), "not a readable Parquet file")
    pd.DataFrame({"x": [1]}).to_parquet(out / "alerts.parquet")
    _one_line_error(CliRunner().invoke(cli, ["report", str(out)]), "lacks column 'rank'")
    (out / "manifest.json").write_text("[1, 2]")
    _one_line_error(CliRunner().invoke(cli, ["report", str(out)]), "not a tbml manifest")


def test_a_reused_folder_holds_no_stale_file_and_keeps_the_users(sample, tmp_path):
    out = tmp_path / "out"
    api.score_files(sample / "invoices.csv", sample / "transfers.csv", out_dir=out)
    (out / "report.html").write_text("<p>yesterday's report</p>")  # as `tbml report` would have left it
    (out / "my notes.txt").write_text("keep me")
    result = api.score_files(sample / "invoices.csv", out_dir=out)  # today: no transfers
    names = sorted(p.name for p in out.iterdir())
    assert "quarantine_transfers.csv" not in names and "report.html" not in names
    assert (out / "my notes.txt").read_text() == "keep me"
    assert sorted(Path(p).name for p in result.manifest["outputs"].values()) == sorted(
        n for n in names if n not in ("manifest.json", "my notes.txt"))
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no staging folder left behind
    # a folder that holds no tbml manifest is not tbml's: a file that happens to share a name stays
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "quarantine_transfers.csv").write_text("not tbml's")
    api.validate_files(sample / "invoices.csv", out_dir=foreign)
    assert (foreign / "quarantine_transfers.csv").read_text() == "not tbml's"


def test_csv_header_cells_are_neutralised(tmp_path):
    path = tmp_path / "invoices.csv"
    header = "invoice_id,date,importer_id,exporter_country,importer_country,hs_code,gross_weight_kg,value,currency"
    rows = [f"M{i},2023-01-0{1 + i},IMP1,CN,US,090111,{100 + i},{1000 + i},USD" for i in range(3)]
    rows.append("M9,2023-01-09,IMP1,CN,US,090111,-3,100,USD")  # quarantined: its columns are written back
    path.write_text(f'{header},"{EVIL.replace(chr(34), chr(34) * 2)}"\n' + "\n".join(r + ",x" for r in rows) + "\n")
    api.validate_files(path, out_dir=tmp_path / "out")
    text = (tmp_path / "out" / "quarantine_invoices.csv").read_text()
    header_cells = pd.read_csv(tmp_path / "out" / "quarantine_invoices.csv", dtype=str).columns
    assert "'" + EVIL in header_cells and EVIL not in [c for c in header_cells]
    assert not text.splitlines()[0].startswith("=") and ',"=' not in text.splitlines()[0]


@pytest.mark.parametrize("planted", [".batch.lock", "batch.log"])
def test_batch_refuses_a_link_planted_at_its_lock_or_log(sample, tmp_path, planted):
    target = tmp_path / "precious.txt"
    target.write_text("do not truncate me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / planted).symlink_to(target)
    job = tmp_path / "job.yaml"
    job.write_text(f"inputs: [{sample / 'invoices.csv'}]\noutput: out\n")
    result = CliRunner().invoke(cli, ["batch", str(job)])
    _one_line_error(result, f"{tmp_path / 'out' / planted}: is a symbolic link")
    assert target.read_text() == "do not truncate me"
    (tmp_path / "out" / planted).unlink()
    (tmp_path / "out" / "runs").symlink_to(tmp_path)
    with pytest.raises(batch.TBMLError, match="runs: is a symbolic link"):
        batch.run_batch(job)


def test_every_row_quarantined_is_a_failure_with_a_hint(tmp_path):
    # a decimal comma the file itself shows is read as one (tests/test_reading_hardening.py)
    ok = CliRunner().invoke(cli, ["validate", str(BAD / "decimal_comma.csv"), "-o", str(tmp_path / "ok")])
    assert ok.exit_code == 0 and "decimal_comma_read 6" in ok.output
    unreadable = CORPUS / "every_number_unreadable.csv"
    result = CliRunner().invoke(cli, ["validate", str(unreadable), "-o", str(tmp_path / "v")])
    _one_line_error(result, "every one of the 6 rows was quarantined, 6 as bad_number", "decimal mark?",
                    str(tmp_path / "v" / "quarantine_invoices.csv"))
    assert len(pd.read_csv(tmp_path / "v" / "quarantine_invoices.csv")) == 6  # written, for the user to look at
    result = CliRunner().invoke(cli, ["score", str(BAD / "unquoted_decimal_comma.csv"), "-o", str(tmp_path / "s")])
    _one_line_error(result, "6 as malformed_row", "wrong delimiter? pass --delimiter")
    result = CliRunner().invoke(cli, ["validate", str(unreadable), "--strict", "-o", str(tmp_path / "t")])
    _one_line_error(result, "6 row(s) quarantined in strict mode")  # strict says what it always said


def test_a_zero_row_parquet_is_refused_like_a_header_only_csv(sample, tmp_path):
    empty = tmp_path / "empty.parquet"
    pd.read_csv(sample / "invoices.csv").head(0).to_parquet(empty)
    _one_line_error(CliRunner().invoke(cli, ["validate", str(empty), "-o", str(tmp_path / "v")]),
                    f"{empty}: has a header but no data rows")
    csv = CliRunner().invoke(cli, ["validate", str(DATA / "header_only.csv"), "-o", str(tmp_path / "w")])
    assert csv.output.split(": ", 2)[2] == CliRunner().invoke(cli, ["validate", str(empty)]).output.split(": ", 2)[2]


def test_a_zero_value_line_is_scored_as_under_invoicing(sample, tmp_path):
    frame = pd.read_csv(sample / "invoices.csv", dtype=str)
    frame.loc[5, "value"] = "0"
    weight = float(frame.loc[5, "gross_weight_kg"])
    frame.loc[9, ["value", "gross_weight_kg"]] = ["0", None]
    path = tmp_path / "invoices.csv"
    frame.to_csv(path, index=False)
    alerts = api.score_files(path, sample / "transfers.csv").alerts.set_index("invoice_id")
    line = alerts.loc[frame.loc[5, "invoice_id"]]
    assert line["risk"] >= 60 and line["suspected_typology"] == "under_invoicing"
    assert line["reasons"].startswith(f"declared value 0 {frame.loc[5, 'currency']} for ") and " kg of goods" in line["reasons"]
    assert f"{weight:,.0f}" in line["reasons"] or f"{weight:,.1f}" in line["reasons"]
    by_quantity = alerts.loc[frame.loc[9, "invoice_id"]]
    assert by_quantity["rules_hit"] == "zero_value_by_quantity" and "for a quantity of" in by_quantity["reasons"]
    assert (alerts["reasons"] != "").all()


def test_a_tiny_file_says_it_is_too_small_to_judge(sample, tmp_path):
    lines = (sample / "invoices.csv").read_text().splitlines()
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(lines[:3]) + "\n")
    result = CliRunner().invoke(cli, ["score", str(tiny), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    said = "too few lines to judge prices and profiles (2 invoice line(s), fewer than 20); only red-flag rules were applied"
    assert said in result.output and "0 alerts at risk >= 30" in result.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["judged"] == said
    # the rules that need no peers still speak: a zero value on a tiny file
    zero = tmp_path / "zero.csv"
    frame = pd.read_csv(tiny, dtype=str)
    frame.loc[0, "value"] = "0"
    frame.to_csv(zero, index=False)
    alerts = api.score_files(zero).alerts
    assert len(alerts) == 1 and alerts["rules_hit"].iloc[0].startswith("zero_value") and alerts["reasons"].iloc[0]
