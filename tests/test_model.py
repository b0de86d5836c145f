"""The fused detector on labelled synthetic data: against both baselines, per typology, reproducible."""

import numpy as np
import pandas as pd
import pytest

from tbml.evaluate import compare
from tbml.ingest import load_invoices, load_transfers
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.synth import TYPOLOGIES, generate


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, small_synthetic):
    folder = tmp_path_factory.mktemp("model")
    write_table(small_synthetic.invoices, folder / "inv.csv")
    write_table(small_synthetic.transfers, folder / "tr.csv")
    return load_invoices(folder / "inv.csv").accepted, load_transfers(folder / "tr.csv").accepted


@pytest.fixture(scope="module")
def evaluation(loaded):
    invoices, transfers = loaded
    items = TBMLModel().fit(invoices, transfers).score(invoices, transfers).items
    return items, compare(items, invoices, transfers)["methods"]


def test_beats_both_baselines_overall(evaluation):
    _, methods = evaluation
    ours = methods["tbml"]
    # measured on this data (20,000 invoices, seed 11): 0.773 against 0.166 (IQR filter) and 0.070 (raw forest)
    assert ours["pr_auc"] > 0.7
    assert ours["pr_auc"] > 3 * max(methods["iqr_filter"]["pr_auc"], methods["raw_forest"]["pr_auc"])
    assert ours["precision@1%"] > 0.85 and ours["recall@5%"] > 0.5


def test_beats_both_baselines_on_every_typology_but_over_invoicing(evaluation):
    _, methods = evaluation
    ours = methods["tbml"]["per_typology"]
    assert set(ours) == set(TYPOLOGIES)
    assert ours["phantom_shipment"]["positives"] == 80  # every phantom payment, linked or not, is counted
    for name, figures in ours.items():
        best_baseline = max(methods[m]["per_typology"][name]["pr_auc"] for m in ("iqr_filter", "raw_forest"))
        if name == "over_invoicing":
            # the known gap: the raw-price IQR filter is one-sided and ignores the cheap tail where honest
            # discounts sit; tbml judges both tails. Measured here 0.209 against 0.479.
            assert figures["pr_auc"] > 0.15
        else:
            assert figures["pr_auc"] > best_baseline, name
    # an invoice settled in pieces under the threshold is found as such: measured 0.615 here (0.135 when the
    # rule counted the payer-payee pair's near-threshold payments instead of the invoice's own)
    assert ours["structuring"]["pr_auc"] > 0.4


def test_every_alert_says_why_with_numbers(evaluation):
    items, _ = evaluation
    alerts = items[items["risk"] >= 30]
    assert len(alerts) and alerts["reasons"].str.contains(r"\d").all()
    assert alerts["suspected_typology"].isin(set(TYPOLOGIES) | {"unusual_profile"}).all()
    top = alerts.head(100)
    assert top["is_laundering"].mean() > 0.8


def test_same_input_same_scores():
    invoices, transfers = _normalised(generate(4_000, seed=21))
    first = TBMLModel().fit(invoices, transfers).score(invoices, transfers).items
    second = TBMLModel().fit(invoices, transfers).score(invoices, transfers).items
    pd.testing.assert_series_equal(first["risk"], second["risk"])
    assert first["reasons"].equals(second["reasons"])
    once = TBMLModel().fit_score(invoices, transfers).items  # the one-pass path gives the same answer
    pd.testing.assert_frame_equal(once, first)


def test_a_fitted_model_scores_a_later_file_without_refitting():
    data = generate(6_000, seed=22)
    invoices, transfers = _normalised(data)
    early = invoices["date"] < invoices["date"].quantile(0.6)
    model = TBMLModel().fit(invoices[early].reset_index(drop=True), transfers)
    reference = model.price_.reference_prices_.copy()
    later = model.score(invoices[~early].reset_index(drop=True), transfers)
    pd.testing.assert_frame_equal(model.price_.reference_prices_, reference)
    assert (later.items["item"] == "invoice").sum() == (~early).sum()
    assert np.isfinite(later.items["risk"]).all()


def _normalised(data):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        write_table(data.invoices, Path(tmp) / "i.csv")
        write_table(data.transfers, Path(tmp) / "t.csv")
        return load_invoices(Path(tmp) / "i.csv").accepted, load_transfers(Path(tmp) / "t.csv").accepted


def test_both_declarations_of_a_shipment_make_one_finding():
    """With the exporting side's declarations in the file, a mispriced shipment is found on its import line,
    and the export declaration of the same shipment (the true figures) is neither flagged by the gap nor
    counted a second time in traders' histories."""
    invoices, transfers = _normalised(generate(8_000, seed=23, laundering_rate=0.1, mirror_share=0.5))
    items = TBMLModel().fit_score(invoices, transfers).items
    lines = items[items["item"] == "invoice"]
    export = lines["declaration_side"] == "export"
    mirrored = export & lines["shipment_ref"].isin(lines.loc[~export, "shipment_ref"])
    assert mirrored.sum() > 1000
    assert lines.loc[export, "mirror_value_gap"].isna().all()
    relational = r"unrelated_goods|round_trip|circular_trade|two_way_trade"
    assert not lines.loc[mirrored, "rules_hit"].str.contains(relational).any()
    # the import lines still carry them, and the gap finds the mispriced ones
    assert lines.loc[lines["typology"] == "unrelated_goods", "rules_hit"].str.contains("unrelated_goods").mean() > 0.5
    over = lines[lines["typology"] == "over_invoicing"]
    judged = over["mirror_value_gap"].notna()
    assert judged.sum() > 20 and (over.loc[judged, "driver"] == "mirror_gap").mean() > 0.8
    assert (over.loc[judged, "mirror_value_gap"] > 0.3).mean() > 0.9
