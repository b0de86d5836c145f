"""The command line: exit codes, exact messages, help text, and outputs on disk."""

import json

import pytest
from click.testing import CliRunner

import tbml
from tbml.cli import cli

from .conftest import DATA, EXAMPLES, MAPPINGS


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
        "(tbml init writes example mappings)\n"
    )


def test_strict_fails_with_exit_1(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "--strict", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "15 row(s) quarantined in strict mode" in result.output
    assert "Traceback" not in result.output


def test_encoding_and_mapping_options(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(DATA / "latin1.csv"), "--encoding", "cp1252", "-o", str(tmp_path)])
    assert result.exit_code == 0 and "2 accepted" in result.output
    result = runner.invoke(cli, ["validate", str(EXAMPLES / "customs_declarations.csv"), "--mapping",
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
    lines = result.stdout.splitlines()
    assert lines[0] == f"{data / 'invoices.csv'}: 6,000 rows in, 6,000 scored, 0 quarantined"
    assert " alerts at risk >= 30 (at most 5% of the items); " in lines[2] and lines[3].startswith("  #1 ")
    assert "load and validate: " in result.stderr and "fit and score: " in result.stderr  # progress, on stderr
    import pandas as pd
    alerts = pd.read_parquet(out / "alerts.parquet")
    assert alerts["rank"].is_monotonic_increasing and alerts["risk"].is_monotonic_decreasing
    assert (alerts["risk"] >= 30).all() and (alerts["risk"] <= 100).all()
    assert alerts["reasons"].str.len().gt(20).all() and alerts["suspected_typology"].ne("").all()
    assert alerts.head(50)["is_laundering"].mean() > 0.6  # the base rate is about 7%
    items = pd.read_parquet(out / "items.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["inputs"]:
        assert entry["rows_in"] == entry["rows_accepted"] + entry["rows_quarantined"]
    scored = manifest["rows_scored"]
    assert scored["invoices"] == 6000 == (items["item"] == "invoice").sum()
    assert scored["transfers_unmatched"] + scored["transfers_settling_invoices"] == manifest["inputs"][1]["rows_accepted"]
    assert manifest["alerts"] == len(alerts)
    entities = pd.read_csv(out / "entities.csv")
    assert entities["suspicion"].is_monotonic_decreasing and entities["alerts"].min() >= 1


def test_score_quarantines_bad_rows_and_scores_the_rest(runner, tmp_path):
    result = runner.invoke(cli, ["score", str(EXAMPLES / "customs_declarations.csv"), "--mapping",
                                 str(MAPPINGS / "customs_import_declarations.yaml"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("7 rows in, 4 scored, 3 quarantined")
    import pandas as pd
    assert len(pd.read_parquet(tmp_path / "items.parquet")) == 4
    assert len(pd.read_csv(tmp_path / "quarantine_invoices.csv")) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "circular_trade" in manifest["rules_skipped_for_missing_columns"] or \
        "paid_more_than_once" in manifest["rules_skipped_for_missing_columns"]  # no transfers, no payment rules


def test_score_shows_mirror_gaps_when_both_sides_are_present(runner, tmp_path):
    data = tmp_path / "data"
    assert runner.invoke(cli, ["generate", "--invoices", "4000", "--seed", "5", "--mirror-share", "0.5",
                               "-o", str(data)]).exit_code == 0
    assert runner.invoke(cli, ["score", str(data / "invoices.csv"), "-o", str(tmp_path / "s")]).exit_code == 0
    import pandas as pd
    items = pd.read_parquet(tmp_path / "s" / "items.parquet")
    matched = items[items["mirror_match"] == "shipment"]
    assert len(matched) > 1000 and matched["mirror_quantity_gap"].notna().any()
    assert matched.loc[~matched["is_laundering"], "mirror_value_gap"].abs().median() < 0.05
    judged = items["mirror_gap_fence"].notna()
    assert not judged[items["mirror_match"] == ""].any()  # no counterpart, no mirror judgement
    assert judged[items["mirror_match"] == "shipment"].mean() > 0.9  # the rest: too few matched peers


def test_evaluate_prints_all_three_methods(runner, tmp_path):
    data = tmp_path / "data"
    assert runner.invoke(cli, ["generate", "--invoices", "5000", "--seed", "8", "-o", str(data)]).exit_code == 0
    result = runner.invoke(cli, ["evaluate", str(data / "invoices.csv"), "--transfers", str(data / "transfers.csv"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures["methods"]) == {"tbml", "iqr_filter", "raw_forest"}
    tbml = figures["methods"]["tbml"]
    assert {"pr_auc", "roc_auc", "precision@1%", "recall@5%", "value_recall@2%", "per_typology"} <= set(tbml)
    assert tbml["pr_auc"] > figures["methods"]["iqr_filter"]["pr_auc"]
    table = runner.invoke(cli, ["evaluate", str(data / "invoices.csv")])
    assert table.stdout.startswith("| metric | tbml | iqr_filter | raw_forest |")


def test_evaluate_needs_labels(runner, tmp_path):
    result = runner.invoke(cli, ["evaluate", str(DATA / "bom_semicolon_titlecase.csv")])
    assert result.exit_code == 1 and "no is_laundering column: evaluation needs labelled data" in result.output


def test_score_works_with_only_the_required_columns(runner, tmp_path):
    path = tmp_path / "minimal.csv"
    rows = ["invoice_id,date,importer_id,exporter_country,importer_country,hs_code,gross_weight_kg,value,currency"]
    rows += [f"M{i},2023-0{1 + i % 9}-01,IMP{i % 7},CN,US,0901{11 + i % 2},{100 + i},{1000 + 10 * i},USD"
             for i in range(80)]
    rows.append("M999,2023-05-05,IMP1,CN,US,090111,100,90000,USD")  # ninety times the going value per kg
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(cli, ["score", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    import pandas as pd
    alerts = pd.read_parquet(tmp_path / "out" / "alerts.parquet")
    assert alerts["invoice_id"].iloc[0] == "M999" and "value per kg" in alerts["reasons"].iloc[0]
    skipped = json.loads((tmp_path / "out" / "manifest.json").read_text())["rules_skipped_for_missing_columns"]
    assert "paid_more_than_once" in skipped and "circular_trade" not in skipped


def test_alerts_and_models_wrap_to_the_terminal_as_rich_tables():
    import io

    import pandas as pd
    from rich.console import Console

    from tbml.cli import _print_alerts, _print_frame

    alerts = pd.DataFrame({"rank": [1], "item": ["invoice"], "invoice_id": ["INV[bold]1"], "transfer_id": [None],
                           "risk": [91.4], "suspected_typology": ["over_invoicing"],
                           "reasons": ["unit price 8.13x the median of 40 peers | " + "a long reason " * 12]})
    out = io.StringIO()
    _print_alerts(alerts, Console(file=out, width=70, force_terminal=False))
    text = out.getvalue()
    assert max(map(len, text.splitlines())) <= 70  # wrapped to the terminal, nothing cut
    assert "INV[bold]1" in text and "over-invoicing" in text and "8.13x" in text and " 91 " in text
    out = io.StringIO()
    _print_frame(pd.DataFrame({"version": [1, 2], "aliases": ["champion", ""]}), Console(file=out, width=40))
    assert "champion" in out.getvalue() and max(map(len, out.getvalue().splitlines())) <= 40
