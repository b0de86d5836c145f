"""Saving and loading the fitted chain, and the MLflow lifecycle: train, register, alias, load anywhere."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.cli import cli
from tbml.errors import TBMLError
from tbml.ingest import load_invoices, load_transfers
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.persist import load_model
from tbml.synth import generate


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reg")
    data = generate(3_000, seed=31, laundering_rate=0.05)
    write_table(data.invoices, folder / "invoices.csv")
    write_table(data.transfers, folder / "transfers.csv")
    return folder


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A private MLflow store: SQLite file and artifacts under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def _loaded(files):
    return load_invoices(files / "invoices.csv").accepted, load_transfers(files / "transfers.csv").accepted


def test_save_and_load_give_the_same_scores_without_pickle(files, tmp_path):
    invoices, transfers = _loaded(files)
    model = TBMLModel().fit(invoices, transfers)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "forest.skops", "high_risk.json", "kg_per_unit.parquet", "model.json", "price_reference.parquet", "rules.yaml"]
    again = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(model.score(invoices, transfers).items, again.score(invoices, transfers).items)
    with pytest.raises(TBMLError, match="folder is not empty"):
        model.save(tmp_path / "m")
    with pytest.raises(TBMLError, match="not a saved tbml model"):
        load_model(files)


def test_train_register_promote_and_score_by_alias(files, store):
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", str(files / "invoices.csv"), "--transfers", str(files / "transfers.csv")])
    assert trained.exit_code == 0, trained.output
    assert "registered tbml version 1 as @challenger" in trained.stdout
    listed = runner.invoke(cli, ["models", "list"])
    assert "challenger" in listed.stdout and "champion" not in listed.stdout
    assert runner.invoke(cli, ["models", "promote", "tbml", "1"]).stdout.strip() == "tbml@champion -> version 1"
    shown = runner.invoke(cli, ["models", "show", "tbml"])
    assert "challenger,champion" in shown.stdout and "pr_auc" in shown.stdout
    import mlflow
    run_id = mlflow.MlflowClient().get_model_version("tbml", "1").run_id
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "evaluation")}
    assert logged == {"evaluation/evaluation.md", "evaluation/evaluation.json"}

    scored = runner.invoke(cli, ["score", str(files / "invoices.csv"), "--transfers", str(files / "transfers.csv"),
                                 "--model", "models:/tbml@champion", "-o", str(store / "out")])
    assert scored.exit_code == 0, scored.output
    manifest = json.loads((store / "out" / "manifest.json").read_text())
    assert manifest["model"] == "models:/tbml@champion" and "load model" in manifest["seconds"]
    assert manifest["drift"]["drift"] is False and manifest["drift"]["psi_hs2"] < 0.01  # scored its own training files
    by_model = pd.read_parquet(store / "out" / "items.parquet")
    invoices, transfers = _loaded(files)
    in_process = TBMLModel().fit(invoices, transfers).score(invoices, transfers).items
    pd.testing.assert_series_equal(by_model["risk"], in_process["risk"], check_names=False)
    assert by_model["invoice_id"].equals(in_process["invoice_id"])


def test_a_fresh_process_loads_by_alias_and_scores_the_same(files, store):
    invoices, transfers = _loaded(files)
    from tbml import registry
    model = TBMLModel().fit(invoices, transfers)
    registry.log_model(model, invoices.head(20), alias="champion")
    expected = model.score(invoices, transfers).items[["invoice_id", "risk"]]
    script = (
        "import sys; from tbml import registry; from tbml.ingest import load_invoices, load_transfers;"
        f"m = registry.load('models:/tbml@champion');"
        f"items = m.score(load_invoices(r'{files / 'invoices.csv'}').accepted,"
        f" load_transfers(r'{files / 'transfers.csv'}').accepted).items;"
        f"items[['invoice_id', 'risk']].to_parquet(r'{store / 'fresh.parquet'}')"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=store, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_parquet(store / "fresh.parquet"), expected)

    import mlflow
    predicted = mlflow.pyfunc.load_model("models:/tbml@champion").predict(invoices.head(200))
    assert list(predicted.columns) == ["invoice_id", "risk", "suspected_typology", "reasons", "rules_hit"]
    assert len(predicted) == 200


def test_unknown_model_is_one_line_and_exit_1(files, store):
    result = CliRunner().invoke(cli, ["score", str(files / "invoices.csv"), "--model", "models:/nope@champion",
                                      "-o", str(store / "o")])
    assert result.exit_code == 1
    assert "Error: models:/nope@champion: cannot load the model" in result.output
    result = CliRunner().invoke(cli, ["models", "promote", "tbml", "9"])
    assert result.exit_code == 1 and "has no version 9" in result.output


def test_drift_is_measured_and_recorded_when_scoring_with_a_model(files, tmp_path):
    from tbml import drift
    invoices, transfers = _loaded(files)
    model = TBMLModel().fit(invoices, transfers)
    same = model.drift(model.score(invoices, transfers))
    assert not same["drift"] and same["psi_hs2"] < 0.01 and abs(same["price_shift"]) < 0.02
    # a year later: prices 30% up and only two chapters traded
    later = invoices[invoices["hs2"].isin(invoices["hs2"].value_counts().index[:2])].copy()
    later["reporting_value"] *= 1.3
    moved = model.drift(model.score(later))
    assert moved["drift"] and moved["psi_hs2"] > drift.PSI_LIMIT
    assert moved["price_shift"] == pytest.approx(0.26, abs=0.08)
    assert any("unit prices sit +" in r for r in moved["reasons"])
    model.save(tmp_path / "m")
    assert load_model(tmp_path / "m").drift_reference_ == model.drift_reference_
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0 and drift.psi([0.9, 0.1], [0.1, 0.9]) > 1


def test_training_to_a_folder_is_reproducible_and_writes_a_model_card(files, tmp_path):
    runner = CliRunner()
    for folder in ("a", "b"):
        result = runner.invoke(cli, ["train", str(files / "invoices.csv"), "--transfers", str(files / "transfers.csv"),
                                     "--save", str(tmp_path / folder), "--no-register"])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "model.json").read_text() == (tmp_path / "b" / "model.json").read_text()
    # skops archives name members by object id, so compare what the forests do, not their bytes
    invoices, transfers = _loaded(files)
    pd.testing.assert_frame_equal(load_model(tmp_path / "a").score(invoices, transfers).items,
                                  load_model(tmp_path / "b").score(invoices, transfers).items)
    card = (tmp_path / "a" / "MODEL_CARD.md").read_text()
    assert "## Training data" in card and "## Intended use" in card and "## Limits" in card and "| pr_auc |" in card
    assert runner.invoke(cli, ["train", str(files / "invoices.csv"), "--no-register"]).exit_code == 2


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on loopback with its own SQLite store, stopped after the test."""
    import time
    import urllib.request
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--workers", "1"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_round_trip_through_a_real_mlflow_server(files, tmp_path, monkeypatch, mlflow_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    trained = CliRunner().invoke(cli, ["train", str(files / "invoices.csv"), "--transfers",
                                       str(files / "transfers.csv"), "--alias", "champion"])
    assert trained.exit_code == 0, trained.output
    script = (
        "from tbml import registry; from tbml.ingest import load_invoices, load_transfers;"
        "m = registry.load('models:/tbml@champion');"
        f"items = m.score(load_invoices(r'{files / 'invoices.csv'}').accepted,"
        f" load_transfers(r'{files / 'transfers.csv'}').accepted).items;"
        f"items[['invoice_id', 'risk']].to_parquet(r'{tmp_path / 'fresh.parquet'}')"
    )
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": mlflow_server}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    invoices, transfers = _loaded(files)
    expected = TBMLModel().fit(invoices, transfers).score(invoices, transfers).items[["invoice_id", "risk"]]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "fresh.parquet"), expected)


def test_top_level_api(files, tmp_path):
    import tbml
    saved = tbml.train(files / "invoices.csv", files / "transfers.csv", save=tmp_path / "m", register=False)
    assert saved["saved"] == str(tmp_path / "m") and "pr_auc" in saved["metrics"]
    result = tbml.score(files / "invoices.csv", files / "transfers.csv", model=str(tmp_path / "m"))
    assert len(result.alerts) and result.manifest["model"] == str(tmp_path / "m")
    assert tbml.evaluate_files(files / "invoices.csv", files / "transfers.csv")["methods"]["tbml"]["pr_auc"] > 0.3
    assert tbml.validate_files(files / "invoices.csv").manifest["rows_quarantined"] == 0
