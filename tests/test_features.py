"""Payment, shipment, entity and network features, rules, fusion and roll-ups on hand-built cases."""

import numpy as np
import pandas as pd
import pytest

from tbml.detectors.fusion import forest_component, fuse, money_component, price_component
from tbml.detectors.rules import evaluate_rules, load_rules, render
from tbml.config import FusionConfig
from tbml.errors import ConfigError
from tbml.features.entity import entity_features
from tbml.features.network import cycle_features
from tbml.features.pricing import kg_per_unit_deviation, kg_per_unit_table
from tbml.features.reconciliation import (
    LinkRule, PaymentRule, invoice_payment_features, link_transfers, shipment_features, transfer_features)


def invoices(rows):
    cols = ["invoice_id", "date", "importer_id", "exporter_id", "importer_country", "exporter_country", "hs6",
            "quantity", "reporting_value"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["hs2"] = frame["hs6"].str[:2]
    return frame


def transfers(rows):
    cols = ["transfer_id", "date", "payer_id", "payer_country", "payee_id", "payee_country", "amount",
            "invoice_ref", "channel"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["reporting_amount"] = frame["amount"]
    return frame


INV = invoices([
    ("I1", "2023-01-10", "IMP", "EXP", "NG", "CN", "851713", 10, 10_000.0),
    ("I2", "2023-02-10", "IMP", "EXP", "NG", "CN", "851713", 20, 20_000.0),
    ("I3", "2023-03-10", "IMP", "EXP", "NG", "CN", "851713", 30, 30_000.0),
])


def test_linking_by_reference_amount_and_parties():
    tr = transfers([
        ("T1", "2023-01-20", "IMP", "NG", "EXP", "CN", 10_000.0, "I1", "wire"),    # cites I1
        ("T2", "2023-02-25", "IMP", "NG", "EXP", "CN", 20_100.0, "", "wire"),      # no ref, I2's amount
        ("T3", "2023-03-20", "IMP", "NG", "EXP", "CN", 9_000.0, "", "wire"),       # no ref, a part payment
        ("T4", "2023-03-20", "IMP", "NG", "EXP", "CN", 5_000.0, "I999", "wire"),   # cites a missing invoice
        ("T5", "2023-03-20", "OTHER", "AE", "EXP", "CN", 5_000.0, "", "wire"),     # nobody's invoice
    ])
    links = link_transfers(INV, tr, LinkRule(amount_tolerance=0.05, window_before_days=60, window_after_days=180))
    assert links["invoice_pos"].tolist() == [0, 1, 2, -1, -1]
    assert links["link"].tolist() == ["reference", "amount", "parties", "", ""]
    assert links["ref_unknown"].tolist() == [False, False, False, True, False]


def test_an_unreferenced_payment_finds_its_invoice_past_the_pair_s_other_invoices():
    inv = invoices([
        ("A", "2023-01-02", "IMP", "EXP", "NG", "CN", "851713", 10, 12_345.0),
        ("B", "2023-01-20", "IMP", "EXP", "NG", "CN", "851713", 10, 50_000.0),
        ("C", "2023-01-28", "IMP", "EXP", "NG", "CN", "851713", 10, 70_000.0),
        ("D", "2023-02-10", "IMP", "EXP", "NG", "CN", "851713", 10, 12_300.0),   # same amount, later
    ])
    tr = transfers([
        ("T1", "2023-02-01", "IMP", "NG", "EXP", "CN", 12_340.0, "", "wire"),    # pays A, a month on
        ("T2", "2023-02-01", "IMP", "NG", "EXP", "CN", 20_000.0, "", "wire"),    # a part payment
        ("T3", "2023-07-20", "IMP", "NG", "EXP", "CN", 12_345.0, "", "wire"),    # too late for A
    ])
    links = link_transfers(inv, tr, LinkRule(amount_tolerance=0.05, window_before_days=60, window_after_days=180))
    # T1: B and C lie between, and D (after the payment) is within 5% too; A's amount is the closest.
    # T2 matches no amount: of the nearest invoices before (C) and after (D), D's value is nearer.
    # T3: A's window has closed (180 days), so the amount names D
    assert links["invoice_pos"].tolist() == [0, 3, 3]
    assert links["link"].tolist() == ["amount", "parties", "amount"]


def test_transfer_flags_and_structuring_per_payer_payee_pair():
    tr = transfers([
        ("T1", "2023-01-20", "SHELL", "AE", "EXP", "CN", 30_000.0, "I3", "wire"),         # third party, outside
        ("T2", "2023-01-21", "IMP", "NG", "EXP", "CN", 9_500.0, "I2", "cash"),
        ("T3", "2023-01-23", "IMP", "NG", "EXP", "CN", 9_700.0, "I2", "cash"),
        ("T4", "2023-01-25", "IMP", "NG", "EXP", "CN", 9_900.0, "I2", "exchange house"),
        ("T5", "2023-01-25", "IMP", "NG", "OTHER", "CN", 9_900.0, "", "wire"),            # another payee
        ("T6", "2023-03-01", "IMP", "NG", "EXP", "CN", 5_000.0, "I1", "wire"),
    ])
    tr["channel"] = tr["channel"].str.replace(" ", "_")
    links = link_transfers(INV, tr)
    tf = transfer_features(INV, tr, links, frozenset({"NG"}), PaymentRule(reporting_threshold=10_000,
                                                                         structuring_band=0.15,
                                                                         structuring_window_days=10))
    assert tf["third_party_payer"].tolist() == [True, False, False, False, False, False]
    assert tf["payer_outside_corridor"].tolist() == [True, False, False, False, False, False]
    assert tf["structuring_count"].tolist() == [0, 3, 3, 3, 1, 0]
    assert tf["cash_like"].tolist() == [False, True, True, True, False, False]
    assert tf["high_risk_country"].tolist() == [False, True, True, True, True, True]  # all but T1 touch NG
    assert tf["round_amount"].tolist() == [True, False, False, False, False, True]
    per_invoice = invoice_payment_features(INV, tr, tf, links)
    assert per_invoice["n_payments"].tolist() == [1, 3, 1]
    assert per_invoice["paid_ratio"].tolist() == pytest.approx([0.5, 29_100 / 20_000, 1.0])
    assert per_invoice["n_full_referenced"].tolist() == [0, 0, 1]
    assert per_invoice["structuring_count"].tolist() == [0, 3, 0]
    # I2 (20,000) settled by T2-T4, each under 10,000, 29,100 together, from Jan 21 to Jan 25
    assert per_invoice["split_payments"].tolist() == [0, 3, 0]
    assert per_invoice["split_span_days"].iloc[1] == 4 and per_invoice["split_span_days"].iloc[[0, 2]].isna().all()


def test_structuring_is_one_invoice_split_under_the_threshold_not_a_neighbour_of_one():
    inv = invoices([
        ("S", "2023-01-10", "IMP", "EXP", "NG", "CN", "851713", 30, 36_000.0),   # paid in four pieces
        ("H", "2023-01-12", "IMP", "EXP", "NG", "CN", "851713", 9, 9_000.0),     # honest, one near-threshold payment
        ("P", "2023-02-10", "IMP", "EXP", "NG", "CN", "851713", 40, 40_000.0),   # deposit and balance
        ("B", "2023-03-10", "IMP", "EXP", "NG", "CN", "851713", 5, 8_000.0),     # below the threshold itself
    ])
    tr = transfers([(f"S{i}", f"2023-01-1{i}", "IMP", "NG", "EXP", "CN", 9_200.0, "S", "cash") for i in range(4)]
                   + [("H1", "2023-01-13", "IMP", "NG", "EXP", "CN", 9_000.0, "H", "wire"),
                      ("P1", "2023-01-20", "IMP", "NG", "EXP", "CN", 9_000.0, "P", "wire"),
                      ("P2", "2023-03-01", "IMP", "NG", "EXP", "CN", 31_000.0, "P", "wire")]
                   + [(f"B{i}", f"2023-03-1{i}", "IMP", "NG", "EXP", "CN", 2_000.0, "B", "wire") for i in range(4)])
    links = link_transfers(inv, tr)
    tf = transfer_features(inv, tr, links, frozenset(), PaymentRule(reporting_threshold=10_000))
    per_invoice = invoice_payment_features(inv, tr, tf, links, reporting_threshold=10_000)
    assert per_invoice["split_payments"].tolist() == [4, 0, 0, 0]
    assert per_invoice["split_span_days"].iloc[0] == 3
    # the honest invoice H shares the payer, payee and week of S's pieces: the pair-level count sees them,
    # the invoice-level rule does not hold it against H
    assert per_invoice["structuring_count"].iloc[1] >= 3
    items = pd.concat([inv, per_invoice], axis=1).assign(item="invoice")
    hits, _ = evaluate_rules(items, load_rules(), {})
    assert hits["split_under_threshold"].tolist() == [True, False, False, False]
    assert not hits["structured_payments"].any()  # that rule reads unlinked transfers only
    rule = next(r for r in load_rules() if r.name == "split_under_threshold")
    text = render(rule, {**items.iloc[0].to_dict(), "reporting_currency": "USD"}, {"threshold": 10_000})
    assert text == ("invoice S of 36,000 USD settled in 4 payments each under the 10,000 USD reporting threshold, "
                    "over 3 days")


def test_same_goods_invoiced_again_but_not_a_repeat_order():
    inv = invoices([
        ("A", "2023-01-01", "IMP", "EXP", "NG", "CN", "851713", 10, 10_000.0),
        ("B", "2023-01-20", "IMP", "EXP", "NG", "CN", "851713", 10, 10_100.0),   # same goods, same value: again
        ("C", "2023-02-01", "IMP", "EXP", "NG", "CN", "851713", 10, 14_000.0),   # same goods, new price: an order
        ("D", "2023-09-01", "IMP", "EXP", "NG", "CN", "851713", 10, 10_000.0),   # months later
    ])
    inv["shipment_ref"] = ["BL1", "BL1", "BL2", "BL3"]
    out = shipment_features(inv, window_days=60, value_tolerance=0.05)
    assert out["repeat_same_goods"].tolist() == [1, 1, 0, 0]
    assert out["shipment_same_goods"].tolist() == [1, 1, 0, 0]


def test_chapter_novelty_and_new_relationships():
    rows = [(f"H{i}", f"2023-01-{i + 1:02d}", "IMP", "EXP", "NG", "CN", "610910", 1, 100.0) for i in range(6)]
    rows.append(("N", "2023-02-01", "IMP", "EXP2", "NG", "CN", "850760", 1, 100.0))
    rows += [(f"E{i}", f"2023-01-{i + 1:02d}", "IMP2", "EXP2", "NG", "CN", "850760", 1, 100.0) for i in range(6)]
    out = entity_features(invoices(rows), min_history=5)
    novel = out.iloc[6]
    assert novel["chapter_prior_share"] == 0 and novel["prior_lines"] == 6  # importer's 7th line, 1st in ch. 85
    assert novel["new_relationship"]  # IMP and EXP2 both traded before, never together
    assert (out.iloc[:6]["chapter_prior_share"] == 1).all()


def test_rings_are_found_within_a_time_window():
    rows = [
        ("R1", "2023-01-01", "B", "A", "GB", "DE", "720851", 1, 1.0),   # A -> B
        ("R2", "2023-01-10", "C", "B", "FR", "GB", "720851", 1, 1.0),   # B -> C
        ("R3", "2023-01-20", "A", "C", "DE", "FR", "720851", 1, 1.0),   # C -> A: a ring of three
        # X -> Y, Y -> Z, Z -> X, but spread over nine months: no window holds the whole ring
        ("S1", "2023-01-05", "Y", "X", "GB", "DE", "720852", 1, 1.0),
        ("S2", "2023-05-01", "Z", "Y", "FR", "GB", "720852", 1, 1.0),
        ("S3", "2023-10-10", "X", "Z", "DE", "FR", "720852", 1, 1.0),
        ("T1", "2023-01-01", "Q", "P", "GB", "DE", "720853", 1, 1.0),
        ("T2", "2023-11-01", "P", "Q", "DE", "GB", "720853", 1, 1.0),   # back, but ten months later
    ]
    inv = invoices(rows)
    inv["origin_country"] = ["DE", "DE", "DE", None, None, None, "GB", "GB"]
    out = cycle_features(inv, max_length=5, window_days=180)
    assert out["cycle_length"].tolist() == [3, 3, 3, 0, 0, 0, 0, 0]
    assert out["cycle_id"].iloc[0] == "720851:A-B-C"
    assert out["round_trip"].tolist() == [False, False, True, False, False, False, True, False]  # R3 and T1


@pytest.mark.parametrize("earlier_days", [1, 37, 85, 170])
def test_rings_do_not_depend_on_what_else_is_in_the_frame(earlier_days):
    """A case store scores a look-back that slides day by day: legs must fall in the same windows
    whatever earlier rows are scored with them. The legs span 100 days: windows placed from the frame's
    first date would hold them in none when that date is 85 or 170 days earlier."""
    legs = invoices([("L1", "2023-03-01", "B", "A", "GB", "DE", "720851", 1, 1.0),
                     ("L2", "2023-04-15", "C", "B", "FR", "GB", "720851", 1, 1.0),
                     ("L3", "2023-06-09", "A", "C", "DE", "FR", "720851", 1, 1.0)])
    alone = cycle_features(legs, max_length=5, window_days=180)
    assert alone["cycle_length"].tolist() == [3, 3, 3]
    first = pd.Timestamp("2023-03-01") - pd.Timedelta(days=earlier_days)
    earlier = invoices([("E1", str(first.date()), "M", "N", "GB", "DE", "999999", 1, 1.0)])
    together = cycle_features(pd.concat([earlier, legs], ignore_index=True), max_length=5, window_days=180)
    assert together.iloc[1:].reset_index(drop=True).equals(alone)


def test_kg_per_unit_against_peers():
    inv = invoices([(f"K{i}", "2023-01-01", "IMP", "EXP", "NG", "CN", "851713", 10, 1.0) for i in range(12)])
    inv["quantity_unit"] = "NAR"
    inv["gross_weight_kg"] = [2.0 + 0.01 * i for i in range(11)] + [40.0]  # 0.2 kg a phone, then 4 kg a phone
    table = kg_per_unit_table(inv, min_lines=10)
    dev = kg_per_unit_deviation(inv, table)
    assert dev["kg_per_unit_fence"].iloc[-1] > 3 and dev["kg_per_unit_fence"].iloc[:11].abs().max() < 1.5
    assert dev["kg_per_unit_median"].iloc[0] == pytest.approx(np.exp(np.median(np.log(inv["gross_weight_kg"] / 10))))


def test_rules_fire_and_say_why_with_the_figures():
    rules = load_rules()
    items = pd.DataFrame({"item": ["invoice", "invoice"], "invoice_id": ["I1", "I2"], "n_full_referenced": [2, 0],
                          "value": [40_676.0, 1.0], "currency": ["CNY", "USD"]})
    hits, skipped = evaluate_rules(items, rules, {})
    assert hits["paid_more_than_once"].tolist() == [True, False]
    assert {"circular_trade", "split_under_threshold", "structured_payments"} <= set(skipped)  # no columns
    rule = next(r for r in rules if r.name == "paid_more_than_once")
    text = render(rule, {**items.iloc[0].to_dict(), "n_full_referenced": 2.0}, {})
    assert text == "paid 2 times in full by payments citing invoice I1 (40,676 CNY)"
    assert render(rule, {"invoice_id": "I9"}, {}) == "paid ? times in full by payments citing invoice I9 (? ?)"


def test_a_rules_file_saved_with_a_tbml_0_1_model_means_what_it_meant(tmp_path):
    # a saved model carries its rules file; 0.1's structuring rule read the payer-payee pair's count
    path = tmp_path / "rules.yaml"
    path.write_text("structuring: {typology: structuring, severity: high, min_payments: 3, "
                    "reason: '{structuring_count} payments'}\n")
    items = pd.DataFrame({"item": ["invoice", "transfer", "invoice"], "structuring_count": [3, 4, 1]})
    hits, skipped = evaluate_rules(items, load_rules(path), {})
    assert hits["structuring"].tolist() == [True, True, False] and not skipped


def test_bad_rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("no_such_rule: {typology: x, severity: high, reason: r}\n")
    with pytest.raises(ConfigError, match="unknown rule 'no_such_rule'"):
        load_rules(path)
    path.write_text("structuring: {typology: structuring, severity: extreme, reason: r}\n")
    with pytest.raises(ConfigError, match="severity must be one of"):
        load_rules(path)


def test_fusion_is_a_noisy_or_and_more_evidence_never_lowers_risk():
    w = FusionConfig()
    assert price_component(np.array([1.0, 1.5]), 1.5, w).tolist() == [0.0, 0.0]
    assert price_component(np.array([3.0]), 1.5, w)[0] == pytest.approx(0.85 * (1 - np.exp(-1)))
    assert forest_component(np.array([0.9, 1.0]), w).tolist() == pytest.approx([0.0, 0.4])
    assert money_component(np.array([0.0, 5.0]), 1.0, w).tolist() == pytest.approx([0.0, 0.5 * (1 - np.exp(-1))])
    risk = fuse(pd.DataFrame({"rule": [0.6, 0.6, 0.0], "price": [0.0, 0.5, 0.0]}))
    assert risk.tolist() == pytest.approx([60.0, 80.0, 0.0])
