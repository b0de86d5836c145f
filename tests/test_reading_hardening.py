"""Reading hostile and odd files: each gets one clear line or a quarantine reason, never a traceback or a
silent misread, and every row is accounted for. One small file per case in tests/data/bad/reading/."""

import warnings

import pandas as pd
import pytest
from click.testing import CliRunner

import tbml.io
from tbml.api import validate_files
from tbml.cli import cli
from tbml.errors import AllRowsQuarantinedError, InputFileError, MappingError
from tbml.ingest import load_invoices, load_transfers

from .conftest import DATA

BAD = DATA / "bad" / "reading"
HEADER = ("invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,quantity,"
          "quantity_unit,gross_weight_kg,value,currency")


def _row(invoice_id: str, **cells) -> str:
    values = {"date": "2023-03-01", "importer_id": "IMP1", "exporter_country": "CN", "importer_country": "US",
              "hs_code": "090111", "quantity": "100", "gross_weight_kg": "105", "value": "1000", "currency": "USD"}
    values.update(cells)
    return (f"{invoice_id},{values['date']},{values['importer_id']},EXP1,{values['exporter_country']},"
            f"{values['importer_country']},{values['hs_code']},{values['quantity']},KGM,{values['gross_weight_kg']},"
            f"{values['value']},{values['currency']}")


def _accounted(result) -> None:
    s = result.stats
    assert s["rows_in"] == s["rows_accepted"] + s["rows_quarantined"]
    rows = sorted(result.accepted["source_row"].tolist() + result.quarantined["source_row"].tolist())
    assert rows == list(range(1, s["rows_in"] + 1))


def _reasons(result) -> dict[str, str]:
    return dict(zip(result.quarantined["invoice_id"], result.quarantined["reason"]))


# -- 2. dates outside what a pandas timestamp holds ---------------------------------------------------------

def test_dates_outside_pandas_range_are_quarantined_as_bad_date():
    r = load_invoices(BAD / "dates_out_of_range.csv")
    assert _reasons(r) == {"D-0001": "bad_date", "D-9999": "bad_date", "D-1677-09-21": "bad_date",
                           "D-2262-04-12": "bad_date"}
    detail = r.quarantined.set_index("invoice_id").loc["D-9999", "detail"]
    assert detail.startswith("date='9999-12-31': outside the dates tbml can hold (1677-09-22 to 2262-04-11)")
    # the first and last days a timestamp holds are dates like any other
    assert {"D-1677-09-22", "D-2262-04-11", "D-2262-04-11T23"} <= set(r.accepted["invoice_id"])
    _accounted(r)


def test_parquet_timestamps_outside_pandas_range_are_quarantined(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = [dt.datetime(2023, 3, 1), dt.datetime(9999, 12, 31), dt.datetime(1, 1, 1)]
    table = pa.table({"invoice_id": ["P0", "P1", "P2"], "date": pa.array(stamps, pa.timestamp("us")),
                      "importer_id": ["I"] * 3, "exporter_country": ["CN"] * 3, "importer_country": ["US"] * 3,
                      "hs_code": ["090111"] * 3, "quantity": [1.0] * 3, "value": [10.0] * 3, "currency": ["USD"] * 3})
    pq.write_table(table, tmp_path / "sentinels.parquet")
    r = load_invoices(tmp_path / "sentinels.parquet")
    assert _reasons(r) == {"P1": "bad_date", "P2": "bad_date"}
    _accounted(r)


# -- 3. null tokens are text; what is missing is decided per column ------------------------------------------

def test_null_tokens_are_read_as_text_and_judged_per_column(tmp_path):
    r = load_invoices(BAD / "null_tokens.csv")
    assert _reasons(r) == {"NULL-importer": "missing_field", "NULL-value": "missing_field",
                           "N/A-country": "missing_field"}
    accepted = r.accepted.set_index("invoice_id")
    assert accepted.loc["NA-namibia", "exporter_country"] == "NA"  # Namibia, not a missing value
    assert accepted.loc["NA-importer-country", "importer_country"] == "NA"
    assert pd.isna(accepted.loc["NA-qty", "quantity"]) and accepted.loc["NA-qty", "gross_weight_kg"] == 105
    assert pd.isna(accepted.loc["null-weight", "gross_weight_kg"]) and pd.isna(accepted.loc["nan-weight", "gross_weight_kg"])
    _accounted(r)
    # the quarantine file keeps each row exactly as read
    out = validate_files(BAD / "null_tokens.csv", out_dir=tmp_path).outputs["quarantine_invoices"]
    written = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("invoice_id")
    assert written.loc["NULL-importer", "importer_id"] == "NULL"
    assert written.loc["NULL-value", "value"] == "#N/A"
    assert written.loc["N/A-country", "exporter_country"] == "N/A"
    assert written.loc["NULL-importer", "detail"] == "importer_id='NULL': a required field is empty"


# -- 4. numbers: decimal mark from the file, overflow and underflow -----------------------------------------

def test_decimal_commas_are_told_by_the_file_and_counted():
    r = load_invoices(BAD / "decimal_comma_semicolon.csv")
    accepted = r.accepted.set_index("invoice_id")
    assert accepted.loc["C1", ["quantity", "gross_weight_kg", "value"]].tolist() == [1.5, 2.25, 1500.75]
    assert accepted.loc["C2", "value"] == 1.5  # "1,500" in a decimal-comma file is one and a half
    assert _reasons(r) == {"C4-dot": "bad_number"}  # written with the other mark: not read as 1.25 silently
    assert "'.' as the decimal mark, but the file's numbers use ','" in r.quarantined["detail"].iloc[0]
    assert r.stats["read"]["decimal"] == ","
    assert r.stats["repairs"]["decimal_comma_read"] == 2
    assert any("read with ',' as the decimal mark" in note for note in r.stats["notes"])
    _accounted(r)


def test_decimal_mark_that_cannot_be_told_is_one_line_naming_the_setting():
    with pytest.raises(InputFileError) as err:
        load_invoices(BAD / "decimal_comma_ambiguous.csv")
    text = str(err.value)
    assert "'1,500'" in text and "row 1" in text and "read.decimal" in text and "--decimal" in text
    assert "\n" not in text
    assert load_invoices(BAD / "decimal_comma_ambiguous.csv", decimal=",").accepted["value"].tolist() == [1.5, 2.25, 900]
    assert load_invoices(BAD / "decimal_comma_ambiguous.csv", decimal=".").accepted["value"].tolist() == [1500, 2250, 900]


def test_thousands_groups_in_a_comma_separated_file_are_read_with_a_note():
    r = load_invoices(DATA / "bad_rows.csv")
    assert r.accepted.set_index("invoice_id").loc["OK-2", "value"] == 9000.0
    assert any("'9,000'" in note and "thousands separator" in note for note in r.stats["notes"])


def test_overflow_and_underflow_are_non_finite_without_runtime_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = load_invoices(BAD / "numbers_overflow.csv")
    assert _reasons(r) == {"O-1e308": "non_finite", "O-neg": "non_finite", "O-1e400": "non_finite",
                           "O-qty-tiny": "non_finite", "O-underflow": "non_finite", "O-weight": "non_finite"}
    assert set(r.accepted["invoice_id"]) == {"OK-1", "OK-2"}
    for column in ("value", "quantity", "reporting_value"):
        assert r.accepted[column].abs().max() < 1e18
    _accounted(r)


# -- 5. Unicode digits and invisible characters --------------------------------------------------------------

def test_unicode_digits_and_invisible_characters_are_normalised_and_counted():
    r = load_invoices(BAD / "unicode_digits.csv")
    assert r.stats["rows_quarantined"] == 0
    assert set(r.accepted["hs_code"]) == {"090111"}  # one peer group, whatever script the digits were in
    assert set(r.accepted["importer_id"]) == {"IMP1"}  # a zero-width space does not make a new trader
    assert set(r.accepted["exporter_country"]) == {"CN"} and set(r.accepted["currency"]) == {"USD"}
    assert set(r.accepted["value"]) == {1000.0} and set(r.accepted["quantity"]) == {100.0}
    assert set(r.accepted["date"]) == {pd.Timestamp("2023-03-01")}
    assert r.stats["repairs"]["unicode_normalised"] == 6


# -- 6. columns named like tbml's own -----------------------------------------------------------------------

def test_columns_named_like_tbmls_own_are_kept_apart():
    r = load_invoices(BAD / "reserved_column_names.csv")
    assert r.stats["columns_renamed"] == {"source_row": "src:source_row", "reason": "src:src:reason",
                                          "reasons": "src:reasons", "detail": "src:detail",
                                          "malformed_text": "src:malformed_text"}
    assert _reasons(r) == {"R-bad-hs": "bad_hs_code"}
    q = r.quarantined.iloc[0]
    assert q["source_row"] == 2 and q["src:source_row"] == "8" and q["reason"] == "bad_hs_code"
    assert any("reason as src:src:reason" in note for note in r.stats["notes"])
    _accounted(r)


def test_a_mapping_names_a_renamed_column_as_the_file_does(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kind: invoices\nname: m\ncolumns:\n  goods_description: detail\nkeep: [reason]\n")
    path = tmp_path / "x.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,hs_code,quantity,value,currency,"
                    "detail,reason\na,2023-01-01,I,CN,US,090111,1,1,USD,green coffee,audit\n")
    accepted = load_invoices(path, mapping=mapping).accepted
    assert accepted["goods_description"].tolist() == ["green coffee"]
    assert accepted["src:reason"].tolist() == ["audit"]


def test_a_quarantine_file_tbml_wrote_validates_again(tmp_path):
    first = validate_files(DATA / "bad_rows.csv", out_dir=tmp_path / "first")
    again = validate_files(first.outputs["quarantine_invoices"], out_dir=tmp_path / "again")
    before, after = first.results[0], again.results[0]
    assert after.stats["rows_in"] == before.stats["rows_quarantined"] == 15
    _accounted(after)
    was = before.quarantined.set_index("source_row")["reason"]
    now = after.quarantined.assign(row=lambda f: f["src:source_row"].astype(int)).set_index("row")["reason"]
    # the same rows for the same reasons, but for the duplicate (its first occurrence was accepted) and the
    # malformed row (quarantine writes it as blanks with its text beside)
    assert now.drop(16).to_dict() == was.drop([14, 16]).to_dict()
    assert now[16] == "missing_field" and 14 not in now.index
    # and a third time: tbml's columns of the second run are renamed again, apart from the first run's
    # now every row fails again (the duplicate's twin was accepted above): a whole-file failure, with the
    # quarantine still written for the user
    with pytest.raises(AllRowsQuarantinedError, match="every one of the 14 rows was quarantined") as failed:
        validate_files(again.outputs["quarantine_invoices"], out_dir=tmp_path / "third")
    third = failed.value.result
    assert (tmp_path / "third" / "quarantine_invoices.csv").exists()
    assert third.stats["rows_in"] == after.stats["rows_quarantined"]
    assert third.stats["columns_renamed"]["source_row"] == "src:src:source_row"


# -- 7. read options, encodings, what a file really is, long cells --------------------------------------------

@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--delimiter", ";;"], "Invalid value for '--delimiter': ';;' must be exactly one character"),
        (["--delimiter", ""], "Invalid value for '--delimiter': '' must be exactly one character"),
        (["--delimiter", '"'], "cannot be a quote"),
        (["--encoding", "klingon"], "Invalid value for '--encoding': 'klingon' is not an encoding Python knows"),
        (["--encoding", "base64"], "'base64' is not a text encoding"),
        (["--date-format", "day-month-year"], "Invalid value for '--date-format': 'day-month-year' has no strftime"),
        (["--date-format", "%Q/%m"], "Invalid value for '--date-format': '%Q/%m' is not a strftime pattern"),
        (["--transfers-delimiter", "ab", "--transfers", str(DATA / "transfers_bad.csv")],
         "Invalid value for '--transfers-delimiter'"),
    ],
)
def test_bad_read_options_are_one_line_naming_the_option(runner, tmp_path, args, words):
    result = runner.invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "-o", str(tmp_path), *args])
    assert result.exit_code == 2 and words in result.output
    assert "Traceback" not in result.output


def test_read_options_apply_to_their_own_file(runner, tmp_path):
    invoices, transfers = str(DATA / "latin1.csv"), str(BAD / "latin1_transfers.csv")
    result = runner.invoke(cli, ["validate", invoices, "--transfers", transfers, "--encoding", "cp1252",
                                 "-o", str(tmp_path)])
    assert result.exit_code == 1  # --encoding is the invoices'; the transfers error says which option is theirs
    assert "latin1_transfers.csv: line 2:" in result.output and "pass --transfers-encoding cp1252" in result.output
    result = runner.invoke(cli, ["validate", invoices, "--transfers", transfers, "--encoding", "cp1252",
                                 "--transfers-encoding", "cp1252", "-o", str(tmp_path)])
    assert result.exit_code == 0 and "latin1_transfers.csv: 1 rows in, 1 accepted" in result.output
    result = runner.invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "--transfers-encoding", "cp1252",
                                 "-o", str(tmp_path)])
    assert result.exit_code == 1 and "--transfers-encoding was given without a transfers file" in result.output


def test_library_read_overrides_are_checked_too():
    with pytest.raises(InputFileError, match=r"--transfers-delimiter ';;' must be exactly one character"):
        load_transfers(DATA / "transfers_bad.csv", delimiter=";;")
    with pytest.raises(InputFileError, match=r"--date-format '%Q' is not a strftime pattern"):
        load_invoices(DATA / "bad_rows.csv", date_format="%Q")


def test_mapping_read_section_is_checked(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kind: invoices\nread:\n  delimiter: ';;'\n")
    with pytest.raises(MappingError, match=r"m.yaml: read.delimiter: ';;' must be exactly one character"):
        load_invoices(DATA / "bad_rows.csv", mapping=mapping)
    mapping.write_text("kind: invoices\nread:\n  decimal: ';'\n")
    with pytest.raises(MappingError, match=r"read.decimal: ';' must be '.' or ','"):
        load_invoices(DATA / "bad_rows.csv", mapping=mapping)


def test_a_delimiter_that_splits_nothing_says_which_would():
    with pytest.raises(InputFileError, match=r"line 1: the header holds no '\\t' .* but 11 ',': is ',' the delimiter"):
        load_invoices(DATA / "bad_rows.csv", delimiter="\t")


def test_utf16_with_a_byte_order_mark_is_read():
    r = load_invoices(BAD / "utf16_bom_tab.csv")
    assert r.accepted["importer_id"].tolist() == ["Société Générale", "IMP1"]
    assert r.stats["read"]["encoding"] == "utf-16" and r.stats["read"]["delimiter"] == "\t"


@pytest.mark.parametrize(
    "name, words",
    [
        ("png_named.csv", "is a PNG image, not a CSV file"),
        ("xlsx_named.csv", "is an Excel workbook (.xlsx) or a zip archive, not a CSV file: save it as CSV"),
        ("gzip_named.csv", "is gzip-compressed, not a plain CSV file: decompress it first"),
        ("json_named.csv", "looks like JSON (it starts with '['), not CSV"),
        ("nul_bytes.csv", "line 2: holds NUL bytes; it is a binary file, not CSV text"),
        ("utf16_no_bom.csv", "looks like UTF-16 without a byte-order mark: pass --encoding utf-16-le"),
    ],
)
def test_files_that_are_not_csv_text_are_told_what_they_are(name, words):
    with pytest.raises(InputFileError) as err:
        load_invoices(BAD / name)
    text = str(err.value)
    assert f"{name}: " in text and words in text and "cp1252" not in text and "\n" not in text


def test_utf16_asked_for_a_file_that_is_not():
    with pytest.raises(InputFileError, match="no byte-order mark and no NUL bytes, so it is not utf-16"):
        load_invoices(DATA / "bad_rows.csv", encoding="utf-16")
    assert load_invoices(BAD / "utf16_no_bom.csv", encoding="utf-16").stats["rows_accepted"] == 1


def test_a_five_megabyte_cell_is_read(tmp_path):
    path = tmp_path / "long_description.csv"
    path.write_text("\n".join([HEADER + ",goods_description", _row("B1") + ',"' + "x" * 5_000_000 + '"',
                               _row("B2") + ",coffee"]) + "\n")
    r = load_invoices(path)
    assert r.stats["rows_accepted"] == 2 and len(r.accepted["goods_description"].iloc[0]) == 5_000_000


def test_a_cell_over_the_csv_modules_limit_is_read_on_the_python_path(tmp_path):
    path = tmp_path / "long_and_malformed.csv"  # a malformed row sends the file through Python's csv module
    path.write_text("\n".join([HEADER + ",goods_description", _row("B1") + "," + "y" * 200_000,
                               _row("B2") + ",coffee", "B3,short"]) + "\n")
    r = load_invoices(path)
    assert r.stats["rows_accepted"] == 2 and r.quarantined["reason"].tolist() == ["malformed_row"]


def test_a_cell_over_tbmls_cap_is_one_line_with_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr(tbml.io, "MAX_FIELD_CHARS", 1000)
    monkeypatch.setattr(tbml.io, "_BLOCK_BYTES", 4096)
    path = tmp_path / "too_long.csv"
    path.write_text("\n".join([HEADER + ",goods_description", _row("B1") + ",a", _row("B2") + "," + "z" * 10_000,
                               _row("B3") + ",c"]) + "\n")
    with pytest.raises(InputFileError, match=r"too_long.csv: row 2 \(line 3\): a cell is longer than 1,000 characters"):
        load_invoices(path)


def test_no_reading_error_escapes_as_a_traceback(runner, tmp_path):
    for path in sorted(BAD.iterdir()):
        result = runner.invoke(cli, ["validate", str(path), "-o", str(tmp_path / path.stem)])
        assert result.exit_code in (0, 1), (path.name, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), path.name
        if result.exit_code == 1:
            assert result.output.startswith("Error: ") and result.output.count("\n") == 1, path.name


def test_a_quote_left_open_is_quarantined_and_says_so():
    r = load_invoices(BAD / "open_quote.csv")
    malformed = r.quarantined.set_index("source_row")
    assert malformed.loc[2, "reason"] == "malformed_row"
    assert "a quote was left open" in malformed.loc[2, "malformed_text"] and "Q3" in malformed.loc[2, "malformed_text"]
    _accounted(r)


def test_utf8_text_read_as_a_single_byte_encoding_is_refused_not_garbled():
    with pytest.raises(InputFileError, match=r"line 2: was to be read as cp1252 .* but its text is UTF-8 "
                                             r"\(e.g. 'A,2023-01-01,Société'\); read it as utf-8"):
        load_invoices(BAD / "utf8_read_as_cp1252.csv", encoding="cp1252")
    assert load_invoices(BAD / "utf8_read_as_cp1252.csv").accepted["importer_id"].tolist() == ["Société Générale"]
