"""Writes the bad-input corpus in corpus/ (committed; run again only to change it). Each file is one
mistake a careless or hostile user makes; tests/test_corpus.py says what tbml must do with each."""

import gzip
import io
import json
import zipfile
from pathlib import Path

OUT = Path(__file__).parent / "corpus"
H = ("invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,quantity,quantity_unit,"
     "gross_weight_kg,value,currency")


def rows(n=6):
    return [dict(invoice_id=f"I{i}", date=f"2026-03-{i + 1:02d}", importer_id="IMP1", exporter_id="EXP1",
                 exporter_country="CN", importer_country="GB", hs_code="851713", quantity="10", quantity_unit="NAR",
                 gross_weight_kg="5", value=f"{1000 + i * 10}", currency="USD") for i in range(n)]


def csv(rs, header=H, sep=","):
    cols = header.split(",")
    return sep.join(cols) + "\n" + "".join(sep.join(r[c] for c in cols) + "\n" for r in rs)


def write(name, text, enc="utf-8"):
    with open(OUT / name, "w", encoding=enc, newline="") as f:
        f.write(text)


def one(name, **change):
    rs = rows()
    rs[2].update(change)
    write(name, csv(rs))


def main():
    OUT.mkdir(exist_ok=True)
    # dates out of pandas' range
    one("date_0001.csv", date="0001-01-01")
    one("date_9999.csv", date="9999-12-31")
    one("date_1677.csv", date="1677-09-21")
    one("date_2262.csv", date="2262-04-12")
    one("date_year_zero.csv", date="0000-00-00")
    # null tokens that are values
    one("country_namibia.csv", exporter_country="NA")
    rs = rows()
    for i, tok in enumerate(["NULL", "null", "N/A", "#N/A", "nan", "None"]):
        rs[i]["exporter_id"] = tok
    write("null_tokens_in_ids.csv", csv(rs))
    one("null_token_and_bad_number.csv", exporter_country="NA", quantity="1o0")
    # numbers
    rs = rows()
    for i, r in enumerate(rs):
        r["value"], r["quantity"], r["gross_weight_kg"] = f"{i + 1},5", f"{i + 2},25", "7,5"
    write("decimal_comma_semicolon.csv", csv(rs, sep=";"))
    rs = rows()
    for i, r in enumerate(rs):
        r["value"] = f"{i + 1},500"
    write("ambiguous_thousands_semicolon.csv", csv(rs, sep=";"))
    one("overflow_value.csv", value="1e309")
    one("huge_value.csv", value="1e308")
    one("underflow_quantity.csv", quantity="1e-320")
    one("negative_zero_quantity.csv", quantity="-0")
    one("nan_text_value.csv", value="NaN")
    one("infinity_value.csv", value="-Infinity")
    # odd characters
    one("hs_fullwidth_digits.csv", hs_code="\uff18\uff15\uff11\uff17\uff11\uff13")
    one("hs_arabic_indic_digits.csv", hs_code="\u0668\u0665\u0661\u0667\u0661\u0663")
    one("hs_persian_digits.csv", hs_code="\u06f8\u06f5\u06f1\u06f7\u06f1\u06f3")
    one("value_fullwidth_digits.csv", value="\uff11\uff10\uff10\uff10")
    one("zero_width_in_country.csv", exporter_country="C\u200bN")
    # columns named like tbml's own
    for col in ["source_row", "reason", "reasons", "detail", "malformed_text", "rank", "risk", "fx_rate", "item"]:
        rs = rows()
        for r in rs:
            r[col] = "x"
        write(f"column_named_{col}.csv", csv(rs, header=H + "," + col))
    # encodings and files that are not CSV
    write("utf16_bom.csv", csv(rows()), enc="utf-16")
    write("utf8_bom.csv", "\ufeff" + csv(rows()))
    (OUT / "png_named.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    (OUT / "xlsx_named.csv").write_bytes(buf.getvalue())
    (OUT / "gzip_named.csv").write_bytes(gzip.compress(csv(rows()).encode()))
    write("json_named.csv", json.dumps([{"invoice_id": "I1"}]))
    (OUT / "nul_bytes.csv").write_bytes(csv(rows()).encode().replace(b"IMP1", b"IM\x00P1"))
    write("cp1252_names.csv", csv(rows()).replace("EXP1", "Soci\u00e9t\u00e9"), enc="cp1252")
    write("pipe_delimited.csv", csv(rows(), sep="|"))
    # whole-file mistakes
    write("every_row_malformed.csv", H + "\n" + "".join(
        f"I{i};2026-03-01;IMP;EXP;CN;GB;851713;1;NAR;1;100;USD;extra\n" for i in range(5)))
    rs = rows()
    for r in rs:
        r["value"] = "one hundred"
    write("every_number_unreadable.csv", csv(rs))
    write("header_only.csv", H + "\n")
    write("one_line.csv", csv(rows(1)))
    write("two_lines.csv", csv(rows(2)))
    write("blank_lines_only.csv", H + "\n\n\n\n")
    # a formula as a column name, in a file with a bad row: the quarantine file repeats the header
    rs = rows()
    rs[1]["quantity"] = "bad"
    for r in rs:
        r["=HYPERLINK(evil)"] = "1"
    write("formula_column_name.csv", csv(rs, header=H + ",=HYPERLINK(evil)"))
    # configs, mappings, rules, batch jobs
    bomb = "".join(f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefg", "bcdefgh"))
    bomb = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + bomb
    write("config_alias_bomb.yaml", bomb)
    write("mapping_alias_bomb.yaml", "kind: invoices\n" + bomb)
    write("job_alias_bomb.yaml", bomb)
    write("config_n_estimators_zero.yaml", "forest:\n  n_estimators: 0\n")
    write("config_period_fortnight.yaml", "pricing:\n  period: fortnight\n")
    write("config_unknown_level_key.yaml", "pricing:\n  levels:\n    - [hs6, planet]\n")
    write("config_unknown_currency.yaml", "ingest:\n  reporting_currency: XYZ\n")
    write("config_negative_threshold.yaml", "fusion:\n  alert_threshold: -5\n")
    write("config_weight_above_one.yaml", "fusion:\n  price_weight: 7\n")
    write("config_not_yaml.yaml", "ingest: [unclosed\n")
    write("config_a_list.yaml", "- ingest\n- pricing\n")
    write("config_missing_rules_file.yaml", "reconciliation:\n  rules: no_such_rules.yaml\n")
    rule = "phantom_payment:\n  typology: phantom_shipment\n  severity: high\n  reason: \"{}\"\n"
    write("rules_attribute_access.yaml", rule.format("{transfer_id.__class__.__mro__}"))
    write("rules_huge_width.yaml", rule.format("{transfer_id:>999999999}"))
    write("rules_conversion.yaml", rule.format("{transfer_id!r}"))
    write("rules_unknown_rule.yaml", "launder_detector:\n  typology: phantom_shipment\n  severity: high\n  reason: x\n")
    for name in ("rules_attribute_access", "rules_huge_width", "rules_conversion", "rules_unknown_rule"):
        write(f"config_{name}.yaml", f"reconciliation:\n  rules: {name}.yaml\n")
    write("mapping_unknown_column.yaml", "kind: invoices\ncolumns:\n  invoice_nr: X\n")
    write("mapping_values_not_a_table.yaml", "kind: invoices\nvalues:\n  channel: cash\n")
    write("mapping_bad_pattern.yaml", "kind: transfers\ninvoice_ref_pattern: \"(INV\"\n")
    write("mapping_keep_missing_column.yaml", "kind: invoices\nkeep: [NOT_THERE]\n")
    write("job_unknown_key.yaml", "inputs:\n  - invoices: x.csv\noutput: out\nschedule: nightly\n")
    write("job_glob_matches_nothing.yaml", "inputs:\n  - invoices: nothing/*/invoices.csv\noutput: out\n")


if __name__ == "__main__":
    main()
