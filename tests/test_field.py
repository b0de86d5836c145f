"""Files as users have them: blank optional columns, bank free text, foreign codes, kept columns, net mass,
payments for rejected invoices, and the shipped defaults copied out with `tbml init`."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.api import generate_files, score_files
from tbml.cli import cli
from tbml.config import load_config
from tbml.ingest import load_invoices, load_transfers

from .conftest import EXAMPLES, MAPPINGS

OPTIONAL_INVOICE = ["exporter_id", "origin_country", "shipment_ref", "goods_description", "declaration_side",
                    "payment_terms", "transport_mode", "quantity_unit", "quantity", "gross_weight_kg"]
OPTIONAL_TRANSFER = ["invoice_ref", "channel"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("field")
    generate_files(root, n_invoices=1500, seed=21, laundering_rate=0.04)
    return (pd.read_csv(root / "invoices.csv", dtype=str, keep_default_na=False),
            pd.read_csv(root / "transfers.csv", dtype=str, keep_default_na=False))


@pytest.mark.parametrize("share", [1.0, 0.1])
@pytest.mark.parametrize("column", OPTIONAL_INVOICE + OPTIONAL_TRANSFER)
def test_blank_optional_columns_score_and_are_said(generated, tmp_path, column, share):
    invoices, transfers = (frame.copy() for frame in generated)
    frame = transfers if column in OPTIONAL_TRANSFER else invoices
    blank = np.random.default_rng(1).random(len(frame)) < share
    frame.loc[blank, column] = ""
    invoices.to_csv(tmp_path / "i.csv", index=False)
    transfers.to_csv(tmp_path / "t.csv", index=False)
    result = score_files(tmp_path / "i.csv", tmp_path / "t.csv", out_dir=tmp_path / "out")
    m = result.manifest
    assert m["rows_in"] == m["rows_accepted"] + m["rows_quarantined"]
    stats = m["inputs"][1 if column in OPTIONAL_TRANSFER else 0]
    notes = " ".join(stats["notes"])
    assert f"{column} is blank on" in notes or column in ("goods_description", "payment_terms", "transport_mode")
    # a blank never becomes a value: no alert quotes "nan" or "<NA>"
    assert not result.alerts["reasons"].str.contains(r"\bnan\b|<NA>", regex=True).any()
    if column == "quantity" and share == 1.0:
        assert "no unit price can be formed" in notes


def test_blank_sellers_do_not_invent_third_parties_or_phantoms(generated, tmp_path):
    invoices, transfers = (frame.copy() for frame in generated)
    invoices["exporter_id"] = ""
    invoices.to_csv(tmp_path / "i.csv", index=False)
    transfers.to_csv(tmp_path / "t.csv", index=False)
    items = score_files(tmp_path / "i.csv", tmp_path / "t.csv").items
    inv = items[items["item"] == "invoice"]
    assert not inv["third_party_payee"].any()  # a payee cannot differ from a seller nobody named
    assert (inv["cycle_length"] == 0).all()
    # payments citing their invoice still link; the others are matched by importer and amount
    assert (items["item"] == "transfer").sum() < 0.2 * len(transfers)


@pytest.mark.parametrize("wrap", ["/INV/{} PAYMENT GOODS", "INVOICE NO. {}, THANK YOU", "{} // balance"])
def test_invoice_numbers_are_found_inside_free_text_references(generated, tmp_path, wrap):
    invoices, transfers = (frame.copy() for frame in generated)
    invoices.to_csv(tmp_path / "i.csv", index=False)
    transfers.to_csv(tmp_path / "plain.csv", index=False)
    has = transfers["invoice_ref"] != ""
    transfers.loc[has, "invoice_ref"] = transfers.loc[has, "invoice_ref"].map(wrap.format)
    transfers.loc[~has, "invoice_ref"] = "PAYMENT FOR GOODS"  # text naming no invoice: not a reference
    transfers.to_csv(tmp_path / "text.csv", index=False)
    plain = score_files(tmp_path / "i.csv", tmp_path / "plain.csv").items
    text = score_files(tmp_path / "i.csv", tmp_path / "text.csv").items
    phantoms = lambda items: int(items["rules_hit"].str.contains("phantom_payment").sum())  # noqa: E731
    assert phantoms(text) == phantoms(plain)
    assert (text["item"] == "transfer").sum() == (plain["item"] == "transfer").sum()


def test_customs_example_with_commercial_invoice_numbers_net_mass_kept_columns_and_codes():
    loaded = load_invoices(EXAMPLES / "customs_declarations.csv", mapping="customs_import_declarations")
    acc = loaded.accepted.set_index("invoice_id")
    assert acc.loc["23GB000000000001-2", "invoice_number"] == "SBE-2023-0117"
    assert acc.loc["23GB000000000001-1", "transport_mode"] == "sea"  # code 1 through the mapping's values
    assert acc.loc["23GB000000000002-1", "src:DECLARANT_ID"] == "GB000333444000"  # kept untouched
    assert (acc["weight_basis"] == "gross").all()


def test_net_mass_stands_in_for_a_blank_gross_weight(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,hs_code,net_weight_kg,value,"
                    "currency\nA,2026-03-01,I,CN,GB,851713,12.5,100,USD\n")
    row = load_invoices(path).accepted.iloc[0]
    assert row["gross_weight_kg"] == 12.5 and row["weight_basis"] == "net"


def test_bank_codes_through_value_maps_and_unknown_codes_counted():
    loaded = load_transfers(EXAMPLES / "bank_wires.csv", mapping="bank_wire_transfers")
    channel = loaded.accepted.set_index("transfer_id")["channel"]
    assert channel["FT23032200004"] == "cash" and channel["FT23041000006"] == "exchange_house"
    assert channel["FT23040100001"] == "wire"
    assert loaded.stats["unknown_codes"] == {"channel": {"xyzpay": 1}}
    assert any("'xyzpay' (1)" in note and "values:" in note for note in loaded.stats["notes"])


def test_unknown_country_in_an_optional_column_blanks_the_field_not_the_row(tmp_path):
    path = tmp_path / "zz.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,origin_country,hs_code,quantity,"
                    "value,currency\nA,2026-03-01,I,CN,GB,ZZ,851713,1,100,USD\nB,2026-03-01,I,CN,GB,CN,851713,1,100,USD\n")
    loaded = load_invoices(path)
    assert loaded.stats["rows_quarantined"] == 0
    assert loaded.accepted["origin_country"].isna().tolist() == [True, False]
    assert loaded.stats["unknown_codes"]["origin_country"] == {"ZZ": 1}


def test_value_map_turns_a_code_into_missing(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kind: invoices\nvalues:\n  origin_country: {XX: null, UNKNOWN: null}\n")
    path = tmp_path / "xx.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,origin_country,hs_code,quantity,"
                    "value,currency\nA,2026-03-01,I,CN,GB,xx,851713,1,100,USD\n")
    loaded = load_invoices(path, mapping=mapping)
    assert loaded.accepted["origin_country"].isna().all() and "origin_country" not in loaded.stats["unknown_codes"]


def test_examples_score_end_to_end_without_false_phantoms(tmp_path):
    result = score_files(EXAMPLES / "customs_declarations.csv", EXAMPLES / "bank_wires.csv",
                         mapping="customs_import_declarations", transfers_mapping="bank_wire_transfers")
    items = result.items
    transfers = items[items["item"] == "transfer"].set_index("transfer_id")
    invoices = items[items["item"] == "invoice"].set_index("invoice_id")
    # the payment of a two-line commercial invoice settles both lines
    assert "FT23040100001" not in transfers.index
    assert invoices.loc[["23GB000000000001-1", "23GB000000000001-2"], "n_payments"].tolist() == [1, 1]
    assert invoices.loc["23GB000000000001-2", "paid_ratio"] == pytest.approx(1.0, abs=0.01)
    # a payment for a quarantined declaration says so and is no phantom
    rejected = transfers.loc["FT23032000003"]
    assert "quarantined at validation (row 4: bad_date)" in rejected["reasons"]
    assert "phantom_payment" not in rejected["rules_hit"] and rejected["risk"] < 30
    # free text naming no invoice is no phantom; an invoice number the file lacks is
    assert "phantom_payment" not in transfers.loc["FT23032200004", "rules_hit"]
    assert "phantom_payment" in transfers.loc["FT23041000006", "rules_hit"]
    assert transfers.loc["FT23041000006", "src:PAYMENT_TYPE"] == "MSB"


def test_init_writes_editable_defaults_that_take_effect(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["init", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    config_path = tmp_path / "s" / "config.yaml"
    config = load_config(config_path)
    assert config.reconciliation.rules == str((tmp_path / "s" / "rules.yaml").resolve())
    assert (tmp_path / "s" / "mappings" / "bank_wire_transfers.yaml").read_text() == \
        (MAPPINGS / "bank_wire_transfers.yaml").read_text()
    again = runner.invoke(cli, ["init", str(tmp_path / "s")])
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    # switching a rule off in the copied rules file changes what scoring finds
    rules = tmp_path / "s" / "rules.yaml"
    rules.write_text(rules.read_text().replace("phantom_payment:\n", "phantom_payment:\n  enabled: false\n", 1))
    items = score_files(EXAMPLES / "customs_declarations.csv", EXAMPLES / "bank_wires.csv",
                        mapping="customs_import_declarations", transfers_mapping="bank_wire_transfers",
                        config=config_path).items
    assert not items["rules_hit"].fillna("").str.contains("phantom_payment").any()


def test_help_is_fast_because_commands_import_lazily():
    import subprocess
    import sys
    code = "import sys, tbml.cli; print(sorted(m for m in ('pandas', 'sklearn', 'numba', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_no_quantity_column_and_a_row_without_weight_is_quarantined_not_a_crash(tmp_path):
    path = tmp_path / "noqty.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,hs_code,gross_weight_kg,value,"
                    "currency\nA,2026-03-01,I,CN,GB,851713,12.5,100,USD\nB,2026-03-01,I,CN,GB,851713,,100,USD\n")
    loaded = load_invoices(path)
    assert loaded.stats["quarantine_reasons"] == {"no_quantity_or_weight": 1}
    assert loaded.quarantined["detail"].iloc[0] == "quantity='': neither quantity nor gross weight is given"
    assert any("no unit price can be formed" in note for note in loaded.stats["notes"])


def test_a_price_judged_on_net_mass_says_so(tmp_path):
    rows = ["invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,net_weight_kg,value,"
            "currency"]
    rows += [f"I{i},2026-03-{1 + i % 28:02d},IMP{i % 7},EXP{i % 5},CN,GB,720810,1000,{900 + (i % 9) * 10},USD"
             for i in range(60)]
    rows.append("X,2026-03-15,IMP1,EXP1,CN,GB,720810,1000,9000,USD")  # ten times its peers' value per kg
    (tmp_path / "net.csv").write_text("\n".join(rows) + "\n")
    items = score_files(tmp_path / "net.csv").items.set_index("invoice_id")
    assert items.loc["X", "weight_basis"] == "net"
    assert "value per kg of net mass" in items.loc["X", "price_reason"]
