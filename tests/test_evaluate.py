"""Evaluation figures do not depend on the order of the items: ties at a budget's cut count by expected value."""

import numpy as np
import pytest

from tbml.evaluate import BUDGETS, compare, expected_top_k, metrics, pr_auc
from tbml.ingest import load_invoices, load_transfers
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.synth import generate


def test_expected_top_k_counts_the_tied_block_by_its_share():
    scores = [3.0, 2.0, 2.0, 2.0, 1.0]
    positive = [1, 0, 1, 0, 1]
    # the 3 counts in full; one of the three 2s is taken, and one of those three is positive
    assert expected_top_k(positive, scores, 2) == pytest.approx(1 + 1 / 3)
    assert expected_top_k(positive, scores, 4) == pytest.approx(2.0)  # the whole tied block: no expectation needed
    assert expected_top_k(positive, scores, 0) == 0.0
    assert expected_top_k(positive, scores, 99) == pytest.approx(3.0)
    assert expected_top_k([1, 1], [np.nan, 0.0], 1) == pytest.approx(1.0)  # a missing score ranks last


def test_a_method_scoring_every_item_alike_finds_the_base_rate_whatever_the_order():
    rng = np.random.default_rng(3)
    y = rng.random(2_000) < 0.07
    flat = np.zeros(len(y))
    for order in (np.arange(len(y)), np.argsort(~y, kind="stable"), np.argsort(y, kind="stable")):
        figures = metrics(y[order], flat)  # positives first, last, or mixed: the same figures
        for budget in BUDGETS:
            tag = f"{budget * 100:g}%"
            k = max(1, round(budget * len(y)))
            assert figures[f"precision@{tag}"] == pytest.approx(y.mean(), abs=1e-4)
            assert figures[f"recall@{tag}"] == pytest.approx(k / len(y), abs=1e-4)
        assert figures["pr_auc"] == pytest.approx(y.mean(), abs=1e-4)
        assert figures["roc_auc"] == pytest.approx(0.5)


def test_shuffled_items_give_identical_figures():
    rng = np.random.default_rng(4)
    n = 3_000
    y = rng.random(n) < 0.05
    # coarse scores: many ties everywhere, including at every cut
    scores = np.round(rng.random(n) * 4 + 2 * y, 0)
    value = rng.lognormal(10, 1, n)
    typology = np.where(y, rng.choice(["over_invoicing", "structuring"], n), "")
    kind = np.where(rng.random(n) < 0.9, "invoice", "transfer")
    first = metrics(y, scores, value, typology, kind)
    for seed in range(3):
        shuffle = np.random.default_rng(seed).permutation(n)
        assert metrics(y[shuffle], scores[shuffle], value[shuffle], typology[shuffle], kind[shuffle]) == first


def test_average_precision_counts_a_tie_as_one_threshold():
    # scikit-learn's average precision steps once per distinct score: order inside a tie cannot matter
    y = np.array([1, 0, 0, 1, 0, 1, 0, 0])
    s = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    # at threshold 2: precision 1/3, recall 1/3; at 1: precision 3/6, recall 1; at 0 recall does not grow
    expected = (1 / 3) * (1 / 3) + (2 / 3) * (3 / 6)
    assert pr_auc(y, s) == pytest.approx(expected)
    assert pr_auc(y[::-1], s[::-1]) == pytest.approx(expected)


@pytest.fixture(scope="module")
def without_quantities(tmp_path_factory):
    """4,000 generated invoices whose quantities are left blank (weights only), scored and compared."""
    folder = tmp_path_factory.mktemp("no_quantities")
    data = generate(4_000, laundering_rate=0.04, seed=8)
    write_table(data.invoices.assign(quantity=None, quantity_unit=None), folder / "invoices.csv")
    write_table(data.transfers, folder / "transfers.csv")
    invoices = load_invoices(folder / "invoices.csv").accepted
    transfers = load_transfers(folder / "transfers.csv").accepted
    items = TBMLModel().fit_score(invoices, transfers).items
    return items, invoices, transfers


def test_a_baseline_blind_to_the_file_does_not_inherit_tbmls_ranking(without_quantities):
    items, invoices, transfers = without_quantities
    methods = compare(items, invoices, transfers)["methods"]
    iqr, ours = methods["iqr_filter"], methods["tbml"]
    base_rate = iqr["positives"] / iqr["items"]
    for budget in BUDGETS:
        tag = f"{budget * 100:g}%"
        # no unit price anywhere: the filter scores every item 0 and finds positives at the base rate
        assert iqr[f"precision@{tag}"] == pytest.approx(base_rate, abs=1e-4)
    assert ours["precision@1%"] > 3 * iqr["precision@1%"]  # before the fix they were equal
    reversed_items = items.iloc[::-1].reset_index(drop=True)
    assert compare(reversed_items, invoices, transfers)["methods"] == methods
