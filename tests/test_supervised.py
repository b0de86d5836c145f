"""Learning from labels: labels read without guessing, ordered label history that never sees a line's own
label, a ranker that beats the plain classifier where fraud follows who declares, fusion that beats the
unsupervised risk, partial labels, save and load, and reasons whose counts can be checked."""

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.api import score_files, train_files, validate_files
from tbml.cli import cli
from tbml.config import load_config
from tbml.errors import InputFileError, TBMLError
from tbml.evaluate import metrics, raw_classifier_scores
from tbml.labels import apply_labels, read_labels
from tbml.model import TBMLModel
from tbml.supervised import History, SupervisedRanker, labelled_mask
from tbml.synth import generate


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """12,000 generated invoices (with declarants; fraud follows declarant, office and importer) split at
    the median date into an earlier and a later pair of files."""
    root = tmp_path_factory.mktemp("halves")
    data = generate(n_invoices=12_000, laundering_rate=0.03, seed=21, declarants="fraud")
    inv, tr = data.invoices, data.transfers
    cut = pd.to_datetime(inv["date"]).median()
    for name, frame in (("inv", inv), ("tr", tr)):
        dates = pd.to_datetime(frame["date"])
        frame[dates < cut].to_csv(root / f"{name}_a.csv", index=False)
        frame[dates >= cut].to_csv(root / f"{name}_b.csv", index=False)
    return root


@pytest.fixture(scope="module")
def trained(halves):
    """A model trained with labels on the earlier half (its ranker on out-of-sample items, as
    ``TBMLModel.fit_supervised`` does), and its scores of the later half."""
    config = load_config(None)
    a = validate_files(halves / "inv_a.csv", halves / "tr_a.csv", config=config)
    b = validate_files(halves / "inv_b.csv", halves / "tr_b.csv", config=config)
    model = TBMLModel(config).fit(a.results[0].accepted, a.results[1].accepted)
    items = model.out_of_sample_items(a.results[0].accepted, a.results[1].accepted)
    model.learn_labels(items)
    later = model.score(b.results[0].accepted, b.results[1].accepted).items
    return model, items, later, a.results[0].accepted, b.results[0].accepted


# ---- labels in ------------------------------------------------------------------------------------------

def test_a_blank_label_is_unlabelled_and_an_unknown_one_refused(tmp_path):
    data = generate(n_invoices=300, seed=2)
    inv = data.invoices.astype({"is_laundering": object})
    inv.loc[:9, "is_laundering"] = ""
    inv.loc[10:19, "is_laundering"] = "no"
    inv.loc[20:29, "is_laundering"] = "YES"
    inv.to_csv(tmp_path / "inv.csv", index=False)
    accepted = validate_files(tmp_path / "inv.csv").results[0].accepted
    assert accepted["is_laundering"].isna().sum() == 10
    assert (~accepted["is_laundering"].iloc[10:20].astype(bool)).all()
    assert accepted["is_laundering"].iloc[20:30].astype(bool).all()
    inv.loc[40, "is_laundering"] = "fraud?"
    inv.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputFileError, match=r"bad.csv: row 41, column is_laundering.*'fraud\?'.*values:"):
        validate_files(tmp_path / "bad.csv")


def test_a_labels_file_is_read_strictly_and_applied_by_id(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label,typology\nINV1,confirmed,over_invoicing\nINV2,0,\nNOPE,yes,\n")
    labels = read_labels(path)
    frame = pd.DataFrame({"invoice_id": ["INV1", "INV2", "INV3"]})
    out, used = apply_labels(frame, labels, "invoice_id")
    assert used == 2
    assert out["is_laundering"].tolist()[:2] == [True, False] and pd.isna(out["is_laundering"].iloc[2])
    assert out["typology"].tolist() == ["over_invoicing", "", ""]
    path.write_text("id,label\nINV1,maybe\n")
    with pytest.raises(InputFileError, match="row 2, column label: 'maybe'"):
        read_labels(path)
    path.write_text("id,label\nINV1,1\nINV1,0\n")
    with pytest.raises(InputFileError, match="labelled both"):
        read_labels(path)
    path.write_text("invoice,label\nINV1,1\n")
    with pytest.raises(InputFileError, match="no 'id' column"):
        read_labels(path)


# ---- the label history --------------------------------------------------------------------------------

def test_label_history_counts_only_earlier_days_against_a_brute_force_count():
    rng = np.random.default_rng(4)
    n = 400
    items = pd.DataFrame({"importer_id": rng.choice(["A", "B", "C", None], n),
                          "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D")})
    y = rng.random(n) < 0.3
    found = History.learn(items, y).lookup(items)["importer_id"]
    for i in range(n):
        key = items["importer_id"].iloc[i]
        if key is None:
            assert found[0][i] == 0
            continue
        before = (items["importer_id"] == key).to_numpy() & (items["date"] < items["date"].iloc[i]).to_numpy()
        assert found[0][i] == before.sum() and found[1][i] == y[before].sum()


# ---- learning and fusion ------------------------------------------------------------------------------

def test_fused_risk_beats_unsupervised_and_supervised_beats_the_plain_classifier(trained):
    model, _, later, earlier_invoices, later_invoices = trained
    y = later["is_laundering"].astype(bool).to_numpy()
    unsupervised = metrics(y, later["risk_unsupervised"].to_numpy())
    fused = metrics(y, later["risk"].to_numpy())
    assert fused["pr_auc"] >= unsupervised["pr_auc"] + 0.05
    invoice = (later["item"] == "invoice").to_numpy()
    plain = np.zeros(len(later))
    by_id = pd.Series(raw_classifier_scores(earlier_invoices, later_invoices),
                      index=later_invoices["invoice_id"].astype(str).to_numpy())
    plain[invoice] = by_id.reindex(later.loc[invoice, "invoice_id"].astype(str)).to_numpy()
    ours = metrics(y, later["supervised_probability"].to_numpy())
    assert ours["precision@5%"] >= metrics(y, plain)["precision@5%"]
    assert ours["pr_auc"] > metrics(y, plain)["pr_auc"]


def test_a_typology_no_label_showed_still_reaches_the_alerts(trained, halves):
    """Labels with every structuring case removed: the fused risk still ranks the later half's
    structuring cases above the honest lines, thanks to the unsupervised weight (alpha floor)."""
    model, items, later, _, _ = trained
    labelled = labelled_mask(items) & (items["typology"].fillna("") != "structuring").to_numpy()
    blind = copy.copy(model).learn_labels(items, labelled)
    b = validate_files(halves / "inv_b.csv", halves / "tr_b.csv")
    scored = blind.score(b.results[0].accepted, b.results[1].accepted).items
    mine = (scored["typology"] == "structuring").to_numpy()
    honest = ~scored["is_laundering"].astype(bool).to_numpy()
    if mine.sum() == 0:
        pytest.skip("no structuring case in the later half")
    keep = mine | honest
    ranked = metrics(mine[keep], scored["risk"].to_numpy()[keep])
    alone = metrics(mine[keep], scored["supervised_probability"].to_numpy()[keep])
    assert ranked["pr_auc"] >= alone["pr_auc"]
    assert ranked["pr_auc"] > 10 * mine[keep].mean()  # far above chance


def test_partial_labels_learn_only_from_what_was_labelled(trained):
    _, items, _, _, _ = trained
    reviewed = np.zeros(len(items), dtype=bool)
    reviewed[: int(0.05 * len(items))] = True  # the riskiest 5%, as an alert review would label them
    reviewed[np.arange(len(items)) % 50 == 7] = True  # and an exploration sample
    ranker = SupervisedRanker(seed=0).fit(items, reviewed)
    assert ranker.trained_on_["lines"] == reviewed.sum()
    assert ranker.trained_on_["laundering"] == items["is_laundering"].astype(bool).to_numpy()[reviewed].sum()
    # the rest joins only as "probably clean", weighted by its evidence, and never enters a label history
    assert ranker.trained_on_["unlabelled_as_probably_clean"] == (~reviewed).sum()
    importers = ranker.history_.tables["importer_id"]
    assert importers.groupby("key")["n"].max().sum() == items.loc[reviewed, "importer_id"].notna().sum()
    ignoring = SupervisedRanker(seed=0, unlabelled="ignore").fit(items, reviewed)
    assert ignoring.trained_on_["unlabelled_as_probably_clean"] == 0


def test_too_few_labels_is_one_clear_error(trained):
    _, items, _, _, _ = trained
    few = np.zeros(len(items), dtype=bool)
    few[:3] = True
    with pytest.raises(TBMLError, match="too few labels"):
        SupervisedRanker().fit(items, few)


def test_reasons_quote_counts_an_investigator_can_check(trained):
    model, items, later, _, _ = trained
    alerts = later[later["alert"] & later["reasons"].str.contains("earlier labelled lines were laundering")]
    assert len(alerts), "no alert quotes a label history"
    labelled = items[items["is_laundering"].notna()]
    for _, alert in alerts.head(20).iterrows():
        for who, column in (("importer", "importer_id"), ("declarant", "declarant_id"), ("exporter", "exporter_id")):
            found = re.search(rf"{who} (\S+): (\d+) of (\d+) earlier labelled lines", alert["reasons"])
            if not found:
                continue
            key, pos, n = found.group(1), int(found.group(2)), int(found.group(3))
            assert key == str(alert[column])
            mine = labelled[(labelled[column].astype(str) == key) & (labelled["date"] < alert["date"])]
            assert (len(mine), int(mine["is_laundering"].astype(bool).sum())) == (n, pos)


def test_a_supervised_model_saves_and_loads_with_the_same_scores(trained, tmp_path, halves):
    model, _, later, _, _ = trained
    model.save(tmp_path / "m")
    loaded = TBMLModel.load(tmp_path / "m")
    b = validate_files(halves / "inv_b.csv", halves / "tr_b.csv")
    again = loaded.score(b.results[0].accepted, b.results[1].accepted).items
    np.testing.assert_allclose(again["risk"].to_numpy(), later["risk"].to_numpy())
    assert again["reasons"].tolist() == later["reasons"].tolist()
    (tmp_path / "m" / "supervised" / "supervised.json").write_text("{\"seed\": 0}")
    with pytest.raises(TBMLError, match="supervised.json: not a supervised ranker"):
        TBMLModel.load(tmp_path / "m")


# ---- the alert budget ---------------------------------------------------------------------------------

def test_the_budget_sets_the_number_of_alerts_and_exploration_is_marked(halves, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["score", str(halves / "inv_b.csv"), "--transfers", str(halves / "tr_b.csv"),
                                 "-o", str(tmp_path / "o"), "--budget", "150", "--explore", "0.2", "--top", "0"])
    assert result.exit_code == 0, result.output
    alerts = pd.read_parquet(tmp_path / "o" / "alerts.parquet")
    assert len(alerts) == 150
    explored = alerts[alerts["selected_by"] == "exploration"]
    assert len(explored) == 30
    assert explored["reasons"].str.startswith("explored: no other alert is in").all()
    # exploration goes where the risk-chosen alerts are not
    assert not set(explored["hs2"]) & set(alerts.loc[alerts["selected_by"] == "risk", "hs2"])
    result = runner.invoke(cli, ["score", str(halves / "inv_b.csv"), "-o", str(tmp_path / "p"), "--budget", "1%"])
    items = pd.read_parquet(tmp_path / "p" / "items.parquet")
    assert int(items["alert"].sum()) == round(0.01 * len(items))
    result = runner.invoke(cli, ["score", str(halves / "inv_b.csv"), "-o", str(tmp_path / "q"), "--budget", "lots"])
    assert result.exit_code == 2 and "--budget" in result.output and "Traceback" not in result.output


def test_common_evidence_counts_for_less_by_the_stated_formula():
    from tbml.budget import temper

    n = 10_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"common": np.where(rng.random(n) < 0.3, 0.35, 0.0),
                          "rare": np.where(rng.random(n) < 0.01, 0.6, 0.0)})
    scaled, said = temper(frame, np.full(n, "invoice", dtype=object), reference=0.05, pseudo=100)
    share = ((frame["common"] > 0).sum() + 100 * 0.05) / (n + 100)
    expected = np.log(share) / np.log(0.05)
    np.testing.assert_allclose(scaled["common"].max(), 0.35 * expected)
    assert scaled["rare"].max() == 0.6 and "rare (invoice)" not in said
    assert said["common (invoice)"]["factor"] == round(expected, 3)


def test_train_supervised_from_a_labels_file_in_the_cli(halves, tmp_path):
    inv = pd.read_csv(halves / "inv_a.csv")
    labels = pd.DataFrame({"id": inv["invoice_id"], "label": np.where(inv["is_laundering"], "confirmed", "dismissed")})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    inv.drop(columns=["is_laundering", "typology", "strength"]).to_csv(tmp_path / "inv.csv", index=False)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "inv.csv"), "--transfers", str(halves / "tr_a.csv"),
                                      "--labels", str(tmp_path / "labels.csv"), "--save", str(tmp_path / "m"),
                                      "--no-register"])
    assert result.exit_code == 0, result.output
    assert f"{len(inv):,} of {len(inv):,} labels matched" in result.output
    assert "learned from" in result.output and "held-out lines" in result.output
    scored = score_files(halves / "inv_b.csv", halves / "tr_b.csv", model=str(tmp_path / "m"))
    assert scored.manifest["risk_bands"][0]["band"].startswith("0-")
    assert (scored.alerts["supervised_probability"].notna()).all()


def test_evaluate_later_period_shows_five_methods(halves):
    result = CliRunner().invoke(cli, ["evaluate", str(halves / "inv_a.csv"), "--transfers", str(halves / "tr_a.csv"),
                                      "--test", str(halves / "inv_b.csv"), "--test-transfers", str(halves / "tr_b.csv"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert set(figures["methods"]) == {"tbml_unsupervised", "tbml_supervised", "tbml_fused", "gradient_boosting_raw",
                                       "iqr_filter"}
    assert figures["methods"]["tbml_fused"]["pr_auc"] > figures["methods"]["iqr_filter"]["pr_auc"]
