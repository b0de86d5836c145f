"""The command line: exit codes, exact messages, help text, and outputs on disk."""

import json

import pytest
from click.testing import CliRunner

import tbml
from tbml.cli import cli

from .conftest import DATA, MAPPINGS


@pytest.fixture
def runner():
    return CliRunner()


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"tbml, version {tbml.__version__}\n"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(runner, command):
    result = runner.invoke(cli, [command, "-h"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "  tbml " + command in result.output


def test_generate_then_validate(runner, tmp_path):
    out = tmp_path / "sample"
    result = runner.invoke(cli, ["generate", "--invoices", "3000", "--seed", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3,000 invoices and ")
    summary = json.loads((out / "generation.json").read_text())
    assert summary["n_invoices"] == 3000 and summary["seed"] == 2

    check = tmp_path / "check"
    result = runner.invoke(cli, ["validate", str(out / "invoices.csv"), "--transfers", str(out / "transfers.csv"),
                                 "-o", str(check)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{out / 'invoices.csv'}: 3,000 rows in, 3,000 accepted, 0 quarantined"
    manifest = json.loads((check / "manifest.json").read_text())
    assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_quarantined"]
    assert manifest["rows_accepted"] == 3000 + summary["n_transfers"]


def test_validate_bad_rows_writes_quarantine_and_reasons(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "-o", str(tmp_path)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"{DATA / 'bad_rows.csv'}: 17 rows in, 2 accepted, 15 quarantined"
    assert "  bad_hs_code                      2" in lines
    import pandas as pd
    quarantine = pd.read_csv(tmp_path / "quarantine_invoices.csv")
    assert len(quarantine) == 15 and quarantine["reason"].notna().all() and quarantine["source_row"].min() == 2
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["inputs"][0]["sha256"] and manifest["rows_quarantined"] == 15


def test_missing_column_is_one_line_and_exit_1(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "missing_column.csv"), "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {DATA / 'missing_column.csv'}: required column 'hs_code' is missing (file has: invoice_id, date, "
        "importer_id, exporter_country, importer_country, quantity, value, currency); map it with --mapping "
        "(see configs/mappings/)\n"
    )


def test_strict_fails_with_exit_1(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "--strict", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "15 row(s) quarantined in strict mode" in result.output
    assert "Traceback" not in result.output


def test_encoding_and_mapping_options(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "latin1.csv"), "--encoding", "cp1252", "-o", str(tmp_path)])
    assert result.exit_code == 0 and "2 accepted" in result.output
    result = runner.invoke(cli, ["validate", str(DATA / "customs_declarations.csv"), "--mapping",
                                 str(MAPPINGS / "customs_import_declarations.yaml"), "-o", str(tmp_path)])
    assert result.exit_code == 0 and "7 rows in, 4 accepted, 3 quarantined" in result.output
    assert "repaired: hs_leading_zero_restored 1" in result.output


@pytest.mark.parametrize(
    "args",
    [["generate"], ["generate", "-o", "x", "--invoices", "5"], ["generate", "-o", "x", "--format", "xls"],
     ["validate"], ["nonsense"]],
)
def test_usage_errors_exit_2(runner, args):
    assert runner.invoke(cli, args).exit_code == 2


def test_score_ranks_alerts_with_reasons_and_accounts_for_every_row(runner, tmp_path):
    data = tmp_path / "data"
    assert runner.invoke(cli, ["generate", "--invoices", "6000", "--seed", "4", "--laundering-rate", "0.05",
                               "-o", str(data)]).exit_code == 0
    out = tmp_path / "scored"
    result = runner.invoke(cli, ["score", str(data / "invoices.csv"), "--transfers", str(data / "transfers.csv"),
                                 "-o", str(out), "--top", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{data / 'invoices.csv'}: 6,000 rows in, 6,000 scored, 0 quarantined"
    assert lines[2].endswith(" price alerts") and lines[3].startswith("  #1 INV")
    import pandas as pd
    alerts = pd.read_parquet(out / "alerts.parquet")
    assert alerts["rank"].tolist() == list(range(1, len(alerts) + 1))
    assert alerts["fence_distance"].abs().is_monotonic_decreasing
    assert (alerts["fence_distance"].abs() > 1.5).all() and alerts["reason"].str.len().gt(40).all()
    assert alerts.head(30)["is_laundering"].mean() > 0.3  # base rate is about 5%
    pd.testing.assert_frame_equal(pd.read_csv(out / "alerts.csv").head(0).astype(object),
                                  alerts.head(0).astype(object), check_dtype=False)
    manifest = json.loads((out / "manifest.json").read_text())
    invoices = manifest["inputs"][0]
    assert invoices["rows_in"] == invoices["rows_accepted"] + invoices["rows_quarantined"] == 6000
    assert manifest["rows_scored"] == 6000 and manifest["alerts"] == len(alerts)


def test_score_quarantines_bad_rows_and_scores_the_rest(runner, tmp_path):
    result = runner.invoke(cli, ["score", str(DATA / "customs_declarations.csv"), "--mapping",
                                 str(MAPPINGS / "customs_import_declarations.yaml"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("7 rows in, 4 scored, 3 quarantined")
    import pandas as pd
    assert len(pd.read_parquet(tmp_path / "scores.parquet")) == 4
    assert len(pd.read_csv(tmp_path / "quarantine_invoices.csv")) == 3


def test_score_shows_mirror_gaps_when_both_sides_are_present(runner, tmp_path):
    data = tmp_path / "data"
    assert runner.invoke(cli, ["generate", "--invoices", "4000", "--seed", "5", "--mirror-share", "0.5",
                               "-o", str(data)]).exit_code == 0
    assert runner.invoke(cli, ["score", str(data / "invoices.csv"), "-o", str(tmp_path / "s")]).exit_code == 0
    import pandas as pd
    scores = pd.read_parquet(tmp_path / "s" / "scores.parquet")
    matched = scores[scores["mirror_match"] == "shipment"]
    assert len(matched) > 1000 and matched["mirror_quantity_gap"].notna().any()
    assert matched.loc[~matched["is_laundering"], "mirror_value_gap"].abs().median() < 0.05
    judged = scores["mirror_gap_fence"].notna()
    assert not judged[scores["mirror_match"] == ""].any()  # no counterpart, no mirror judgement
    assert judged[scores["mirror_match"] == "shipment"].mean() > 0.9  # the rest: too few matched peers
