"""Batch jobs: a broken input fails alone, re-runs are idempotent, a crash leaves the previous run whole,
job mistakes are one line."""

import fcntl
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tbml import batch
from tbml.api import generate_files
from tbml.cli import cli
from tbml.config import load_config
from tbml.errors import TBMLError
from tbml.io import recover_dir, replace_dir, staging_dir
from tbml.model import TBMLModel
from tbml.ingest import load_table
from tbml.fx import FxTable

SCORED_FILES = ("alerts.csv", "alerts.parquet", "alerts.jsonl", "items.parquet", "entities.csv", "networks.csv",
                "quarantine_invoices.csv", "quarantine_transfers.csv")


@pytest.fixture(scope="module")
def incoming(tmp_path_factory):
    """Two good days of files and one whose invoices lack required columns."""
    root = tmp_path_factory.mktemp("incoming")
    for day, sample in (("day1", 0), ("day2", 1)):
        generate_files(root / "in" / day, n_invoices=2500, seed=21, laundering_rate=0.04, sample=sample)
    (root / "in" / "day3").mkdir(parents=True)
    (root / "in" / "day3" / "invoices.csv").write_text("invoice_id,date\nX1,2024-01-01\n")
    (root / "in" / "day3" / "transfers.csv").write_bytes((root / "in" / "day1" / "transfers.csv").read_bytes())
    return root


def _job(root: Path, output="out", extra="", pattern="in/*/invoices.csv") -> Path:
    path = root / f"job-{output}.yaml"
    path.write_text(f"name: night\ninputs:\n  - invoices: {pattern}\n    transfers: \"{{parent}}/transfers.csv\"\n"
                    f"output: {output}\nalert_budget: 5\n{extra}")
    return path


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_broken_input_fails_alone(incoming):
    result = CliRunner().invoke(cli, ["batch", str(_job(incoming, "out1"))])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    out = incoming / "out1"
    summary = json.loads((out / "batch.json").read_text())
    for line, f in zip(lines[:2], summary["files"]):
        assert line == f"scored      {f['run_id']}: {f['rows_in']:,} rows in, 0 quarantined, {f['alerts']:,} alerts"
        assert f["rows_in"] > 5000 and f["alerts"] > 0
    assert [f["run_id"] for f in summary["files"]] == ["day1-invoices", "day2-invoices", "day3-invoices"]
    assert lines[2] == (f"failed      day3-invoices: {incoming / 'in' / 'day3' / 'invoices.csv'}: required column "
                        "'importer_id' is missing (file has: invoice_id, date); map it with --mapping (tbml init writes example mappings)")
    assert result.stderr.splitlines()[-1] == "Error: 1 of 3 input files failed; first: " + lines[2][len("failed      day3-invoices: "):]
    assert [f["status"] for f in summary["files"]] == ["scored", "scored", "failed"]
    for run in ("day1-invoices", "day2-invoices"):
        manifest = json.loads((out / "runs" / run / "manifest.json").read_text())
        assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_quarantined"]
        assert manifest["outputs"]["report"] == str(out / "runs" / run / "report.html")
        assert (out / "runs" / run / "report.html").stat().st_size > 10_000
    assert not (out / "runs" / "day3-invoices").exists()
    index = (out / "report.html").read_text()
    assert 'href="runs/day1-invoices/report.html"' in index and "required column" in index
    log = (out / "batch.log").read_text()
    assert "[3/3]" in log and "failed: " in log and "report: " in log


def test_reruns_are_idempotent(incoming):
    job = _job(incoming, "out2")
    first = batch.run_batch(job)
    out = incoming / "out2"
    before = {run: _bytes(out / "runs" / run) for run in ("day1-invoices", "day2-invoices")}
    summary = (out / "batch.json").read_bytes()
    again = batch.run_batch(job)
    assert [f.status for f in again.files] == ["up to date", "up to date", "failed"]
    assert [(f.rows_in, f.alerts) for f in again.files] == [(f.rows_in, f.alerts) for f in first.files]
    for run, files in before.items():
        assert _bytes(out / "runs" / run) == files  # untouched
    assert (out / "batch.json").read_bytes() != summary  # says "up to date" now ...
    batch.run_batch(job, force=True)  # ... and scoring again gives the same outputs
    assert (out / "batch.json").read_bytes() == summary
    for run, files in before.items():
        now = _bytes(out / "runs" / run)
        assert {name: now[name] for name in SCORED_FILES} == {name: files[name] for name in SCORED_FILES}


def test_a_changed_input_is_scored_again(incoming, tmp_path):
    root = tmp_path
    for day in ("day1", "day2"):
        (root / "in" / day).mkdir(parents=True)
        for name in ("invoices.csv", "transfers.csv"):
            (root / "in" / day / name).write_bytes((incoming / "in" / day / name).read_bytes())
    job = _job(root)
    batch.run_batch(job)
    with open(root / "in" / "day2" / "invoices.csv", "a") as handle:
        handle.write("BROKEN-ROW,not a date\n")  # one more row, which validation quarantines
    result = batch.run_batch(job)
    assert [f.status for f in result.files] == ["up to date", "scored"]
    assert result.files[1].rows_quarantined == 1


def test_a_crash_leaves_the_previous_run_whole(incoming, tmp_path, monkeypatch):
    root = tmp_path
    (root / "in" / "day1").mkdir(parents=True)
    for name in ("invoices.csv", "transfers.csv"):
        (root / "in" / "day1" / name).write_bytes((incoming / "in" / "day1" / name).read_bytes())
    job = _job(root)
    batch.run_batch(job)
    run = root / "out" / "runs" / "invoices"
    before = _bytes(run)

    def crash(folder, **kwargs):  # the scores are written in the staging folder, then the report fails
        assert (Path(folder) / "alerts.csv").exists()
        raise MemoryError("simulated crash while writing the report")

    monkeypatch.setattr(batch, "write_report", crash)
    result = batch.run_batch(job, force=True)
    assert result.files[0].status == "failed"
    assert result.files[0].reason == "internal error MemoryError: simulated crash while writing the report"
    assert _bytes(run) == before
    assert sorted(p.name for p in (root / "out" / "runs").iterdir()) == ["invoices"]  # no staging left
    assert "Traceback" in (root / "out" / "batch.log").read_text()


def test_a_swap_cut_short_is_recovered(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    (final / "alerts.csv").write_text("old")
    staged = staging_dir(final)
    (staged / "alerts.csv").write_text("new")
    os.replace(final, final.with_name(".run.previous"))  # the first rename happened, then the power went
    recover_dir(final)
    assert (final / "alerts.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    staged = staging_dir(final)
    (staged / "alerts.csv").write_text("new")
    replace_dir(staged, final)
    assert (final / "alerts.csv").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_trained_model_scores_every_file_and_is_named(incoming, tmp_path):
    config = load_config(None)
    fx = FxTable.load(config.ingest.fx_rates)
    invoices = load_table(incoming / "in" / "day1" / "invoices.csv", "invoices", None, config, fx, False).accepted
    TBMLModel(config).fit(invoices).save(tmp_path / "model")
    job = _job(tmp_path, extra=f"model: {tmp_path / 'model'}\n", pattern=str(incoming / "in" / "day[12]" / "invoices.csv"))
    result = batch.run_batch(job)
    assert [f.status for f in result.files] == ["scored", "scored"]
    manifest = json.loads((tmp_path / "out" / "runs" / "day1-invoices" / "manifest.json").read_text())
    assert manifest["model"] == str(tmp_path / "model") and len(manifest["model_info"]["sha256"]) == 64
    html = (tmp_path / "out" / "runs" / "day1-invoices" / "report.html").read_text()
    assert manifest["model_info"]["sha256"][:16] in html and "the model&#39;s training data" in html


@pytest.mark.parametrize("text, message", [
    ("inputs: [a.csv]\n", "'output' is required"),
    ("inputs: a.csv\noutput: out\n", "'inputs' must be a list"),
    ("inputs: [a.csv]\noutput: out\noutptu: x\n", "unknown key 'outptu' (known: alert_budget, base_dir, config, "
                                                  "inputs, model, name, output, read, store, strict)"),
    ("inputs: [{transfers: t.csv}]\noutput: out\n", "inputs[0] needs 'invoices' (a path or a glob)"),
    ("inputs: [a.csv]\noutput: out\nalert_budget: 0\n", "'alert_budget' must be a whole number >= 1, not 0"),
    ("inputs: [a.csv\n", "not valid YAML"),
    ("inputs: [a.csv]\noutput: out\nstrict: 'no'\n", "'strict' must be true or false, not 'no'"),
    ("inputs: [{invoices: a.csv, transfers: [t.csv]}]\noutput: out\n", "'inputs[0].transfers' must be text"),
    ("inputs: [a.csv]\noutput: [out]\n", "'output' must be text"),
    ("inputs: [a.csv]\noutput: out\nread: {delimiter: ';;'}\n", "'read.delimiter' must be one character"),
])
def test_job_mistakes_are_one_line(tmp_path, text, message):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["batch", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: ") and message in result.output
    assert result.output.count("\n") == 1


def test_invoices_alone_with_a_mapping(tmp_path):
    """A customs extract: no transfers, its own layout through a mapping, relative to base_dir."""
    from .conftest import DATA, EXAMPLES, MAPPINGS
    (tmp_path / "jobs").mkdir()
    path = tmp_path / "jobs" / "customs.yaml"
    path.write_text(f"base_dir: ..\ninputs:\n  - invoices: {EXAMPLES / 'customs_declarations.csv'}\n"
                    f"    mapping: {MAPPINGS / 'customs_import_declarations.yaml'}\noutput: out\n")
    result = CliRunner().invoke(cli, ["batch", str(path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    (run,) = summary["files"]
    assert run["status"] == "scored" and run["transfers"] is None and run["rows_in"] > 0
    manifest = json.loads((tmp_path / "out" / "runs" / run["run_id"] / "manifest.json").read_text())
    assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_quarantined"]
    assert (tmp_path / "out" / "report.html").exists()


def test_a_pattern_matching_nothing_is_a_failure(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("inputs: [incoming/*.csv]\noutput: out\n")
    result = CliRunner().invoke(cli, ["batch", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "failed      incoming_.csv: incoming/*.csv: no file matches"


def test_one_batch_at_a_time_per_output(tmp_path):
    path = _job(tmp_path)
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".batch.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TBMLError, match="another tbml batch is writing here"):
            batch.run_batch(path)
