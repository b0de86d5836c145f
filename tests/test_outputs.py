"""Outputs are safe to open: CSV cells a spreadsheet would run are neutralised; machine formats stay exact."""

import json

import pandas as pd
from click.testing import CliRunner

from tbml.cli import cli
from tbml.io import neutralise_formulas

EVIL = '=HYPERLINK("http://attacker.invalid","open")'


def test_formula_cells_are_neutralised_and_plain_numbers_kept():
    frame = pd.DataFrame({"name": [EVIL, "+1 555 0100", "@SUM(A1)", "-3", "-2.5e3", "Acme Ltd", None],
                          "value": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    out = neutralise_formulas(frame)
    assert out["name"].tolist()[:6] == ["'" + EVIL, "'+1 555 0100", "'@SUM(A1)", "-3", "-2.5e3", "Acme Ltd"]
    assert pd.isna(out["name"].iloc[6]) and out["value"].tolist() == frame["value"].tolist()


def test_score_outputs_an_attackers_name_safely(tmp_path):
    path = tmp_path / "invoices.csv"
    rows = ["invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,gross_weight_kg,value,currency"]
    rows += [f"M{i},2023-0{1 + i % 9}-01,IMP{i % 7},EXP{i % 5},CN,US,0901{11 + i % 2},{100 + i},{1000 + 10 * i},USD"
             for i in range(80)]
    rows.append(f'M999,2023-05-05,"{EVIL.replace(chr(34), chr(34) * 2)}",EXP1,CN,US,090111,100,90000,USD')
    rows.append("M998,2023-05-05,IMP1,EXP1,CN,US,090111,-3,100,USD")  # quarantined: weight -3
    path.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["score", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    alerts_csv = pd.read_csv(out / "alerts.csv", dtype=str)
    assert alerts_csv["importer_id"].iloc[0] == "'" + EVIL  # a spreadsheet shows it, never runs it
    # what and why first, then who; dates as dates
    assert list(alerts_csv.columns[:6]) == ["rank", "risk", "suspected_typology", "reasons", "item", "invoice_id"]
    assert alerts_csv["date"].iloc[0] == "2023-05-05"
    assert pd.read_parquet(out / "alerts.parquet")["importer_id"].iloc[0] == EVIL  # programs get it exactly
    lines = (out / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == len(alerts_csv) and json.loads(lines[0])["importer_id"] == EVIL
    quarantine = pd.read_csv(out / "quarantine_invoices.csv", dtype=str)
    assert quarantine["gross_weight_kg"].tolist() == ["-3"]  # a number as read, not a formula
