"""Loading: every reject reason, row accounting, file-level errors, mappings and repairs."""

import pandas as pd
import pytest

from tbml.config import Config, IngestConfig
from tbml.errors import InputFileError, MappingError, StrictModeError
from tbml.ingest import load_invoices, load_transfers
from tbml.schema import REJECT_REASONS

from .conftest import DATA, EXAMPLES, MAPPINGS

# invoice_id in tests/data/bad_rows.csv -> the reason it must be quarantined for
EXPECTED_BAD_ROWS = {
    "R-missing": "missing_field",
    "R-number": "bad_number",
    "R-nonfinite": "non_finite",
    "R-date": "bad_date",
    "R-country": "bad_country",
    "R-currency": "unknown_currency",
    "R-hs": "bad_hs_code",
    "R-hs-letters": "bad_hs_code",
    "R-noqty": "no_quantity_or_weight",
    "R-qty": "nonpositive_quantity",
    "R-weight": "nonpositive_weight",
    "R-value": "negative_value",
    "R-fx": "no_fx_rate",
}


@pytest.fixture(scope="module")
def bad_rows():
    return load_invoices(DATA / "bad_rows.csv")


def test_each_bad_row_is_quarantined_for_its_reason(bad_rows):
    q = bad_rows.quarantined.set_index("invoice_id", drop=False)
    for invoice_id, reason in EXPECTED_BAD_ROWS.items():
        assert q.loc[invoice_id, "reason"] == reason, invoice_id
    assert set(bad_rows.accepted["invoice_id"]) == {"OK-1", "OK-2"}


def test_duplicate_and_malformed_rows_keep_their_row_numbers(bad_rows):
    q = bad_rows.quarantined
    dup = q[q["reason"] == "duplicate_id"]
    assert dup["source_row"].tolist() == [14] and dup["invoice_id"].tolist() == ["OK-1"]
    malformed = q[q["reason"] == "malformed_row"]
    assert malformed["source_row"].tolist() == [16]
    assert "R-fields" in malformed["malformed_text"].iloc[0]
    assert "11 fields, expected 12" in malformed["malformed_text"].iloc[0]


def test_every_row_is_accounted_for(bad_rows):
    s = bad_rows.stats
    assert s["rows_in"] == 17
    assert s["rows_in"] == s["rows_accepted"] + s["rows_quarantined"]
    assert sum(s["quarantine_reasons"].values()) == s["rows_quarantined"]
    rows = sorted(bad_rows.accepted["source_row"].tolist() + bad_rows.quarantined["source_row"].tolist())
    assert rows == list(range(1, 18))


def test_reject_reasons_are_all_exercised(bad_rows):
    transfers = load_transfers(DATA / "transfers_bad.csv")
    seen = set(bad_rows.stats["quarantine_reason_hits"]) | set(transfers.stats["quarantine_reason_hits"])
    seen |= {"bad_declaration_side"}  # covered in test_declaration_side below
    assert seen == set(REJECT_REASONS)


def test_quarantine_detail_names_column_and_value(bad_rows):
    q = bad_rows.quarantined.set_index("invoice_id")
    assert q.loc["R-date", "detail"] == "date='2023-02-30': a date could not be parsed"
    assert q.loc["R-currency", "detail"] == "currency='XYZ': not an ISO 4217 currency code"


def test_quarantined_rows_keep_source_values_as_read(bad_rows):
    row = bad_rows.quarantined.set_index("invoice_id").loc["R-number"]
    assert row["quantity"] == "1o0" and row["hs_code"] == "090111"


def test_repairs_on_accepted_rows(bad_rows):
    ok2 = bad_rows.accepted.set_index("invoice_id").loc["OK-2"]
    assert ok2["importer_country"] == "DE" and ok2["exporter_country"] == "GB"  # 'uk' alias fixed, upper-cased
    assert ok2["hs_code"] == "09011100" and ok2["hs4"] == "0901" and ok2["hs6"] == "090111"
    assert ok2["quantity"] == 2000.0 and ok2["quantity_unit"] == "KGM" and ok2["unit_status"] == "converted"
    assert ok2["value"] == 9000.0  # "9,000": well-formed thousands groups
    from tbml.fx import FxTable
    eur_per_usd = FxTable.load().per_usd(pd.Series(["EUR"]), pd.Series([ok2["date"]]), 92)[0]  # ECB, that day
    assert ok2["fx_rate"] == pytest.approx(1 / eur_per_usd) and ok2["reporting_value"] == pytest.approx(9000 / eur_per_usd)
    assert bad_rows.stats["repairs"]["country_alias_fixed"] == 1


def test_transfers_reasons_and_channel():
    r = load_transfers(DATA / "transfers_bad.csv")
    assert r.quarantined["reason"].tolist() == ["nonpositive_amount", "nonpositive_amount", "duplicate_id"]
    assert r.accepted["channel"].tolist() == ["wire"]
    assert r.accepted["reporting_amount"].tolist() == [1000.0]


def test_declaration_side(tmp_path):
    path = tmp_path / "sides.csv"
    head = "invoice_id,date,importer_id,exporter_country,importer_country,hs_code,quantity,value,currency,declaration_side"
    rows = ["a,2023-01-01,I,CN,US,090111,1,1,USD,X", "b,2023-01-01,I,CN,US,090111,1,1,USD,Import",
            "c,2023-01-01,I,CN,US,090111,1,1,USD,sideways"]
    path.write_text("\n".join([head, *rows]) + "\n")
    r = load_invoices(path)
    assert r.accepted["declaration_side"].tolist() == ["export", "import"]
    assert r.quarantined["reason"].tolist() == ["bad_declaration_side"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty.csv", "empty.csv: file is empty"),
        ("header_only.csv", "header_only.csv: has a header but no data rows"),
        ("missing_column.csv", "missing_column.csv: required column 'hs_code' is missing"),
        ("duplicate_header.csv", "duplicate_header.csv: line 1: column name 'date' appears twice"),
        ("does_not_exist.csv", "does_not_exist.csv: file not found"),
        ("latin1.csv", "latin1.csv: line 3: bytes b'2023-03-01,Soci\\xe9t\\xe9 G' are not valid utf-8"),
        ("day_first_dates.csv", "day_first_dates.csv: column 'date': 3 of 3 dates do not match ISO 8601"),
    ],
)
def test_file_level_errors_name_the_file_and_place(name, message):
    with pytest.raises(InputFileError) as err:
        load_invoices(DATA / name)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_wrong_encoding_suggests_the_fix_and_the_fix_works():
    with pytest.raises(InputFileError, match="pass --encoding cp1252"):
        load_invoices(DATA / "latin1.csv")
    r = load_invoices(DATA / "latin1.csv", encoding="cp1252")
    assert r.accepted["importer_id"].tolist()[1] == "Société Générale"


def test_date_format_override():
    r = load_invoices(DATA / "day_first_dates.csv", date_format="%d/%m/%Y")
    assert r.accepted["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-03-01", "2023-03-15", "2023-03-28"]


def test_bom_semicolon_and_title_case_headers():
    r = load_invoices(DATA / "bom_semicolon_titlecase.csv")
    assert r.stats["rows_accepted"] == 1
    row = r.accepted.iloc[0]
    assert row["invoice_id"] == "B1" and row["gross_weight_kg"] == 105.0 and row["unit_status"] == "missing"
    assert "quantity" in r.stats["optional_columns_absent"]


def test_customs_mapping_with_composite_ids_constants_and_decimal_commas():
    r = load_invoices(EXAMPLES / "customs_declarations.csv", mapping=MAPPINGS / "customs_import_declarations.yaml")
    acc = r.accepted.set_index("invoice_id")
    assert list(acc.index) == ["23GB000000000001-1", "23GB000000000001-2", "23GB000000000002-1", "23GB000000000006-1"]
    first = acc.loc["23GB000000000001-1"]
    assert first["quantity"] == 1200 and first["gross_weight_kg"] == 276.5 and first["value"] == 236400.0
    assert first["importer_country"] == "GB" and first["declaration_side"] == "import"
    assert first["date"] == pd.Timestamp("2023-02-03")
    coffee = acc.loc["23GB000000000006-1"]
    assert coffee["hs_code"] == "0901110000"  # 9 digits in a 10-digit file: leading zero restored
    assert r.stats["repairs"]["hs_leading_zero_restored"] == 1
    q = r.quarantined.set_index("source_row")
    assert q.loc[4, "detail"] == "date [ACCEPTANCE_DATE]='31/02/2023': a date could not be parsed"
    assert q.loc[5, "reason"] == "nonpositive_weight" and q.loc[6, "reason"] == "nonpositive_quantity"


def test_hs_restoration_can_be_turned_off():
    config = Config(ingest=IngestConfig(restore_hs_leading_zero="never"))
    r = load_invoices(EXAMPLES / "customs_declarations.csv", mapping=MAPPINGS / "customs_import_declarations.yaml",
                      config=config)
    coffee = r.accepted.set_index("invoice_id").loc["23GB000000000006-1"]
    assert coffee["hs_code"] == "901110000"  # left as written: 9 digits is a valid length
    assert r.stats["repairs"]["hs_leading_zero_restored"] == 0


def test_nine_digit_codes_kept_when_the_file_uses_nine_digits(tmp_path):
    path = tmp_path / "jp.csv"
    head = "invoice_id,date,importer_id,exporter_country,importer_country,hs_code,quantity,value,currency"
    rows = [f"{i},2023-01-01,I,JP,US,847130{i:03d},1,1,USD" for i in range(5)]
    path.write_text("\n".join([head, *rows]) + "\n")
    r = load_invoices(path)
    assert r.accepted["hs_code"].str.len().tolist() == [9] * 5
    assert r.accepted["hs2"].tolist() == ["84"] * 5


def test_mapping_source_column_missing(tmp_path):
    with pytest.raises(InputFileError, match="maps invoice_id to column 'DECLARATION_ID', which the file does not have"):
        load_invoices(DATA / "bad_rows.csv", mapping=MAPPINGS / "customs_import_declarations.yaml", delimiter=",")


def test_bad_constant_is_one_mapping_error(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kind: invoices\nconstants:\n  importer_country: ZZ\n")
    path = tmp_path / "x.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,hs_code,quantity,value,currency\n"
                    "a,2023-01-01,I,CN,090111,1,1,USD\nb,2023-01-01,I,CN,090111,1,1,USD\n")
    with pytest.raises(MappingError, match="constant importer_country='ZZ': not an ISO 3166-1"):
        load_invoices(path, mapping=mapping)


def test_strict_mode_fails_on_any_quarantine():
    with pytest.raises(StrictModeError, match=r"bad_rows.csv: 15 row\(s\) quarantined in strict mode; first: row 2"):
        load_invoices(DATA / "bad_rows.csv", strict=True)
    assert load_invoices(DATA / "bom_semicolon_titlecase.csv", strict=True).stats["rows_quarantined"] == 0


def test_parquet_input_matches_csv(tmp_path, small_synthetic):
    sample = small_synthetic.invoices.head(500)
    sample.to_parquet(tmp_path / "inv.parquet")
    sample.to_csv(tmp_path / "inv.csv", index=False)
    from_parquet = load_invoices(tmp_path / "inv.parquet").accepted
    from_csv = load_invoices(tmp_path / "inv.csv").accepted
    cols = ["invoice_id", "date", "hs6", "quantity", "quantity_unit", "reporting_value"]
    pd.testing.assert_frame_equal(from_parquet[cols], from_csv[cols], check_dtype=False)


def test_parquet_non_finite_and_dates(tmp_path):
    frame = pd.DataFrame({
        "invoice_id": ["a", "b"], "date": pd.to_datetime(["2023-01-01", "2023-01-02"]), "importer_id": ["I", "I"],
        "exporter_country": ["CN", "CN"], "importer_country": ["US", "US"], "hs_code": ["090111", "090111"],
        "quantity": [1.0, float("inf")], "value": [10.0, 10.0], "currency": ["USD", "USD"],
    })
    frame.to_parquet(tmp_path / "x.parquet")
    r = load_invoices(tmp_path / "x.parquet")
    assert r.accepted["invoice_id"].tolist() == ["a"]
    assert r.quarantined["reason"].tolist() == ["non_finite"]


def test_common_column_names_are_recognised_without_a_mapping(tmp_path):
    path = tmp_path / "broker_export.csv"
    path.write_text(
        "Invoice No,Invoice Date,Buyer,Seller,Seller Country,Buyer Country,Commodity Code,Qty,UOM,"
        "Gross Weight,Invoice Value,Currency Code,Amount\n"
        "A-1,2023-05-02,Acme Ltd,Shenzhen Co,CN,GB,851713,10,PCS,12.5,5000,USD,999\n"
    )
    r = load_invoices(path)
    row = r.accepted.iloc[0]
    assert (row["invoice_id"], row["importer_id"], row["hs_code"], row["quantity"], row["value"]) == (
        "A-1", "Acme Ltd", "851713", 10.0, 5000.0)
    assert r.stats["columns_matched"]["hs_code"] == "Commodity Code"
    assert r.stats["columns_matched"]["value"] == "Invoice Value"  # not "Amount": synonyms are specific
