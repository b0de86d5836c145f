"""The bad-input corpus (tests/data/bad/corpus, written by tests/data/bad/make_corpus.py, plus cases built
here that cannot be committed as files): every case ends in rows that add up or in one line of error with
exit 1 or 2, never a traceback, a crash or a hang, and each case's own outcome is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.cli import cli

CORPUS = Path(__file__).parent / "data" / "bad" / "corpus"
VALID = ("invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,quantity,quantity_unit,"
         "gross_weight_kg,value,currency\n" + "".join(
             f"I{i},2026-03-{i + 1:02d},IMP1,EXP1,CN,GB,851713,10,NAR,5,{1000 + 10 * i},USD\n" for i in range(6)))
TRANSFERS = ("transfer_id,date,payer_id,payer_country,payee_id,payee_country,amount,currency,invoice_ref\n"
             "T1,2026-03-05,IMP1,GB,EXP1,CN,1000,USD,I0\n")


def run(args, cwd=None):
    """``tbml ARGS`` in-process; the result after checking it is a success or one line of error."""
    runner = CliRunner()
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
    try:
        result = runner.invoke(cli, [str(a) for a in args])
    finally:
        if cwd is not None:
            os.chdir(old)
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        assert result.exception is None
    else:
        assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), (result.exit_code, result.output,
                                                                                         result.exception)
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, result.output
    return result


def run_isolated(args, cwd, timeout=120):
    """``tbml ARGS`` in a fresh process, for inputs that could crash or hang the interpreter."""
    proc = subprocess.run([sys.executable, "-m", "tbml.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), (proc.returncode, proc.stderr[-2000:])
    return proc


def error_line(result) -> str:
    return next(line for line in result.output.splitlines() if line.startswith("Error"))


def manifest_of(folder) -> dict:
    m = json.loads((Path(folder) / "manifest.json").read_text())
    assert m["rows_in"] == m["rows_accepted"] + m["rows_quarantined"]
    return m


@pytest.fixture
def valid(tmp_path):
    (tmp_path / "valid.csv").write_text(VALID)
    (tmp_path / "transfers.csv").write_text(TRANSFERS)
    return tmp_path


# ---- files whose rows must each end accepted or quarantined with the right reason ----------------------

QUARANTINED = {
    "date_0001.csv": {"bad_date": 1},
    "date_9999.csv": {"bad_date": 1},
    "date_1677.csv": {"bad_date": 1},
    "date_2262.csv": {"bad_date": 1},
    "date_year_zero.csv": {"bad_date": 1},
    "country_namibia.csv": {},
    "null_tokens_in_ids.csv": {},
    "null_token_and_bad_number.csv": {"bad_number": 1},
    "overflow_value.csv": {"non_finite": 1},
    "negative_zero_quantity.csv": {"nonpositive_quantity": 1},
    "nan_text_value.csv": {"missing_field": 1},  # "NaN" in a number column is the missing-value token
    "infinity_value.csv": {"non_finite": 1},
    "utf16_bom.csv": {},
    "utf8_bom.csv": {},
    "pipe_delimited.csv": {},
    "formula_column_name.csv": {"bad_number": 1},
    **{f"column_named_{c}.csv": {} for c in ["source_row", "reason", "reasons", "detail", "malformed_text", "rank",
                                             "risk", "fx_rate", "item"]},
}


@pytest.mark.parametrize("name", sorted(QUARANTINED))
def test_rows_end_accepted_or_quarantined_with_their_reason(tmp_path, name):
    run(["validate", CORPUS / name, "-o", tmp_path])
    m = manifest_of(tmp_path)
    assert m["rows_in"] == 6
    assert m["inputs"][0]["quarantine_reasons"] == QUARANTINED[name]


def test_namibia_is_a_country_and_the_quarantine_file_keeps_the_row_as_read(tmp_path):
    run(["validate", CORPUS / "null_token_and_bad_number.csv", "-o", tmp_path])
    quarantined = pd.read_csv(tmp_path / "quarantine_invoices.csv", dtype=str, keep_default_na=False)
    assert quarantined["exporter_country"].tolist() == ["NA"] and quarantined["quantity"].tolist() == ["1o0"]


def test_a_formula_in_a_column_name_is_neutralised_in_the_quarantine_file(tmp_path):
    run(["validate", CORPUS / "formula_column_name.csv", "-o", tmp_path])
    header = (tmp_path / "quarantine_invoices.csv").read_text().splitlines()[0]
    assert "=HYPERLINK" in header and '"=HYPERLINK' not in header and ",=HYPERLINK" not in header


def test_revalidating_a_quarantine_file_tbml_wrote(tmp_path):
    run(["validate", CORPUS / "null_token_and_bad_number.csv", "-o", tmp_path / "first"])
    again = run(["validate", tmp_path / "first" / "quarantine_invoices.csv", "-o", tmp_path / "second"])
    if again.exit_code == 0:
        assert manifest_of(tmp_path / "second")["inputs"][0]["quarantine_reasons"] == {"bad_number": 1}
    else:  # every row of a quarantine file is bad again: a whole-file failure that says why
        assert "bad_number" in error_line(again) or "number" in error_line(again)


ODD = {
    "hs_fullwidth_digits.csv": ("hs6", "851713", "bad_hs_code"),
    "hs_arabic_indic_digits.csv": ("hs6", "851713", "bad_hs_code"),
    "hs_persian_digits.csv": ("hs6", "851713", "bad_hs_code"),
    "value_fullwidth_digits.csv": ("value", 1000.0, "bad_number"),
    "zero_width_in_country.csv": ("exporter_country", "CN", "bad_country"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_digits_and_characters_are_normalised_or_refused_never_passed_through(tmp_path, name):
    from tbml.api import validate_files
    run(["validate", CORPUS / name, "-o", tmp_path])
    loaded = validate_files(CORPUS / name).results[0]
    column, expected, reason = ODD[name]
    if loaded.stats["rows_quarantined"] == 0:
        assert loaded.accepted.set_index("invoice_id").loc["I2", column] == expected
    else:
        assert loaded.stats["quarantine_reasons"] == {reason: 1}


@pytest.mark.parametrize("name", ["decimal_comma_semicolon.csv", "ambiguous_thousands_semicolon.csv"])
def test_a_decimal_comma_is_never_read_a_thousand_times_too_large_in_silence(tmp_path, name):
    from tbml.api import validate_files
    result = run(["validate", CORPUS / name, "-o", tmp_path])
    if result.exit_code:
        assert "decimal" in error_line(result)
        return
    loaded = validate_files(CORPUS / name).results[0]
    if name.startswith("decimal_comma"):
        assert loaded.accepted["value"].max() < 10  # "6,5" is six and a half
    else:
        said = " ".join(loaded.stats.get("notes", [])) + json.dumps(loaded.stats.get("repairs", {}))
        assert "decimal" in said


@pytest.mark.parametrize("name", ["huge_value.csv", "underflow_quantity.csv"])
def test_extreme_numbers_put_no_infinity_in_outputs(tmp_path, name):
    run(["score", CORPUS / name, "-o", tmp_path])
    manifest_of(tmp_path)
    items = pd.read_parquet(tmp_path / "items.parquet")
    numbers = items.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numbers).any()
    assert "inf" not in (tmp_path / "alerts.csv").read_text().lower().replace("info", "")


# ---- files that are one mistake as a whole: one line, exit 1 ---------------------------------------------

WHOLE_FILE = {
    "png_named.csv": "PNG",
    "xlsx_named.csv": "xlsx",
    "gzip_named.csv": "gzip",
    "json_named.csv": "JSON",
    "cp1252_names.csv": "cp1252",
    "every_row_malformed.csv": "delimiter",
    "every_number_unreadable.csv": "number",
    "header_only.csv": "no data rows",
    "blank_lines_only.csv": "no data rows",
}


@pytest.mark.parametrize("name", sorted(WHOLE_FILE))
def test_whole_file_mistakes_are_one_line_and_exit_1(tmp_path, name):
    result = run(["validate", CORPUS / name, "-o", tmp_path])
    assert result.exit_code == 1
    line = error_line(result)
    assert WHOLE_FILE[name].lower() in line.lower() and name in line
    if name != "cp1252_names.csv":
        assert "cp1252" not in line


def test_nul_bytes_are_refused_or_read_without_a_traceback(tmp_path):
    result = run(["validate", CORPUS / "nul_bytes.csv", "-o", tmp_path])
    if result.exit_code == 0:
        manifest_of(tmp_path)


@pytest.mark.parametrize("name", ["one_line.csv", "two_lines.csv"])
def test_too_few_lines_to_judge_are_said_and_alert_nothing_without_a_reason(tmp_path, name):
    result = run(["score", CORPUS / name, "-o", tmp_path])
    assert result.exit_code == 0
    alerts = pd.read_parquet(tmp_path / "alerts.parquet")
    assert (alerts["reasons"].fillna("").str.strip() != "").all()
    assert "too few" in (result.output + json.dumps(manifest_of(tmp_path))).lower()


def test_a_zero_row_parquet_file_is_like_a_header_only_csv(tmp_path):
    path = tmp_path / "empty.parquet"
    pd.read_csv(CORPUS / "header_only.csv", dtype=str).to_parquet(path)
    result = run(["validate", path, "-o", tmp_path / "out"])
    assert result.exit_code == 1 and "no data rows" in error_line(result)


def test_one_very_large_cell_is_read(tmp_path):
    big = "x" * 5_000_000
    text = VALID.replace("IMP1,EXP1,CN,GB,851713,10,NAR,5,1020", f"IMP1,\"{big}\",CN,GB,851713,10,NAR,5,1020", 1)
    (tmp_path / "big.csv").write_text(text)
    run(["validate", tmp_path / "big.csv", "-o", tmp_path / "out"])
    assert manifest_of(tmp_path / "out")["rows_accepted"] == 6


# ---- read options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value, word", [
    ("--encoding", "klingon-8", "encoding"),
    ("--delimiter", ";;", "delimiter"),
    ("--delimiter", "", "delimiter"),
    ("--date-format", "%Q/%m", "date"),
    ("--date-format", "no directive", "date"),
])
def test_bad_read_options_are_one_line(valid, option, value, word):
    result = run(["validate", valid / "valid.csv", option, value, "-o", valid / "out"])
    assert result.exit_code in (1, 2) and word in result.output.lower()


def test_read_options_for_the_invoices_leave_the_transfers_alone(valid):
    (valid / "latin.csv").write_bytes(VALID.replace("EXP1", "Soci\u00e9t\u00e9").encode("cp1252"))
    result = run(["validate", valid / "latin.csv", "--transfers", valid / "transfers.csv", "--encoding", "cp1252",
                  "-o", valid / "out"])
    assert result.exit_code == 0 and manifest_of(valid / "out")["rows_quarantined"] == 0


# ---- configs, rules, mappings, batch jobs --------------------------------------------------------------

CONFIGS = {
    "config_n_estimators_zero.yaml": "n_estimators",
    "config_period_fortnight.yaml": "period",
    "config_unknown_level_key.yaml": "planet",
    "config_unknown_currency.yaml": "reporting_currency",
    "config_negative_threshold.yaml": "alert_threshold",
    "config_weight_above_one.yaml": "price_weight",
    "config_not_yaml.yaml": "yaml",
    "config_a_list.yaml": "mapping",
    "config_missing_rules_file.yaml": "no_such_rules.yaml",
    "config_rules_attribute_access.yaml": "rules_attribute_access.yaml",
    "config_rules_huge_width.yaml": "rules_huge_width.yaml",
    "config_rules_conversion.yaml": "rules_conversion.yaml",
    "config_rules_unknown_rule.yaml": "launder_detector",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_configs_and_rules_are_one_line_naming_the_key_or_file(valid, name):
    result = run(["score", valid / "valid.csv", "--config", CORPUS / name, "-o", valid / "out"])
    assert result.exit_code == 1 and CONFIGS[name].lower() in error_line(result).lower()


MAPPINGS = {
    "mapping_unknown_column.yaml": ("invoices", "invoice_nr"),
    "mapping_values_not_a_table.yaml": ("invoices", "values"),
    "mapping_keep_missing_column.yaml": ("invoices", "NOT_THERE"),
    "mapping_bad_pattern.yaml": ("transfers", "invoice_ref_pattern"),
}


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_bad_mappings_are_one_line(valid, name):
    kind, word = MAPPINGS[name]
    option = ["--mapping", CORPUS / name] if kind == "invoices" else [
        "--transfers", valid / "transfers.csv", "--transfers-mapping", CORPUS / name]
    result = run(["validate", valid / "valid.csv", *option, "-o", valid / "out"])
    assert result.exit_code == 1 and word in error_line(result)


@pytest.mark.parametrize("args", [
    ["validate", "{valid}", "--config", "{corpus}/config_alias_bomb.yaml"],
    ["validate", "{valid}", "--mapping", "{corpus}/mapping_alias_bomb.yaml"],
    ["batch", "{corpus}/job_alias_bomb.yaml"],
])
def test_yaml_alias_bombs_are_refused_quickly(valid, args):
    args = [a.format(valid=valid / "valid.csv", corpus=CORPUS) for a in args]
    proc = run_isolated(args, cwd=valid, timeout=60)
    assert proc.returncode == 1 and "Error" in proc.stderr


@pytest.mark.parametrize("name, word", [("job_unknown_key.yaml", "schedule"),
                                        ("job_glob_matches_nothing.yaml", "nothing/*/invoices.csv")])
def test_bad_batch_jobs_are_one_line(tmp_path, name, word):
    job = tmp_path / name
    job.write_text((CORPUS / name).read_text())
    result = run(["batch", job])
    assert result.exit_code == 1 and word in result.output


# ---- the output side -----------------------------------------------------------------------------------

def test_output_below_a_file_is_one_line(valid):
    (valid / "a_file").write_text("x")
    result = run(["score", valid / "valid.csv", "-o", valid / "a_file" / "out"])
    assert result.exit_code in (1, 2) and "a_file" in result.output


def test_a_corrupt_alerts_file_given_to_report_is_one_line(valid):
    run(["score", valid / "valid.csv", "-o", valid / "run"])
    (valid / "run" / "alerts.parquet").write_bytes(b"PAR1 not really")
    result = run(["report", valid / "run"])
    assert result.exit_code == 1 and "alerts.parquet" in error_line(result)


def test_a_reused_output_folder_keeps_no_stale_file(valid):
    run(["score", valid / "valid.csv", "--transfers", valid / "transfers.csv", "-o", valid / "run"])
    assert (valid / "run" / "quarantine_transfers.csv").exists()
    run(["score", valid / "valid.csv", "-o", valid / "run"])
    assert not (valid / "run" / "quarantine_transfers.csv").exists()


def test_the_batch_does_not_follow_a_symlink_planted_at_its_lock(valid):
    target = valid / "precious.txt"
    target.write_text("keep me")
    out = valid / "nightly"
    out.mkdir()
    (out / ".batch.lock").symlink_to(target)
    job = valid / "job.yaml"
    job.write_text(f"inputs:\n  - invoices: {valid / 'valid.csv'}\noutput: {out}\n")
    run(["batch", job])
    assert target.read_text() == "keep me"


def test_a_model_folder_with_garbage_is_one_line(valid):
    folder = valid / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{not json")
    result = run(["score", valid / "valid.csv", "--model", folder, "-o", valid / "out"])
    assert result.exit_code == 1 and "model.json" in error_line(result)


def test_a_fifo_in_a_model_folder_does_not_hang(valid):
    folder = valid / "model"
    folder.mkdir()
    os.mkfifo(folder / "model.json")
    proc = run_isolated(["score", valid / "valid.csv", "--model", folder, "-o", valid / "out"], cwd=valid, timeout=60)
    assert proc.returncode == 1 and "model.json" in proc.stderr


def test_a_zero_value_line_with_real_weight_is_alerted(tmp_path):
    from tbml.api import generate_files, score_files
    generate_files(tmp_path, n_invoices=3000, seed=31, laundering_rate=0.0)
    invoices = pd.read_csv(tmp_path / "invoices.csv", dtype=str, keep_default_na=False)
    invoices.loc[100, "value"] = "0"
    invoices.to_csv(tmp_path / "zero.csv", index=False)
    items = score_files(tmp_path / "zero.csv").items
    line = items.set_index("invoice_id").loc[invoices.loc[100, "invoice_id"]]
    assert line["risk"] >= 30 and line["reasons"]


def test_the_corpus_is_large_enough():
    cases = [p for p in CORPUS.iterdir() if p.is_file()]
    assert len(cases) >= 60
