"""Saving and loading the fitted chain, and the MLflow lifecycle: train, register, alias, load anywhere."""

import json
import subprocess
import sys
from pathlib import Path

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
        "forest.parquet", "high_risk.json", "kg_per_unit.parquet", "model.json", "price_reference.parquet", "rules.yaml"]
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
    # rows already normalised by tbml.ingest are scored as they are, in input order
    predicted = mlflow.pyfunc.load_model("models:/tbml@champion").predict(invoices.head(200))
    assert list(predicted.columns) == registry.OUTPUT_COLUMNS
    direct = model.score(invoices.head(200)).items.set_index("invoice_id")["risk"]
    assert predicted["invoice_id"].tolist() == invoices["invoice_id"].head(200).tolist()
    assert predicted["risk"].tolist() == direct.reindex(predicted["invoice_id"]).tolist()
    assert (predicted["quarantine_reason"] == "").all()


def test_predict_takes_rows_as_a_users_file_holds_them_and_reports_bad_rows(files, store):
    """Canonical columns, every value as text: the model validates and normalises them itself."""
    from tbml import registry
    invoices, transfers = _loaded(files)
    model = TBMLModel().fit(invoices, transfers)
    registry.log_model(model, invoices.head(20))
    rows = pd.read_csv(files / "invoices.csv", dtype=str, keep_default_na=False).head(300)
    rows = rows.iloc[::-1].reset_index(drop=True)  # not in file order: the output follows the input
    rows.loc[3, "date"] = "2023-13-45"
    rows.loc[10, "currency"] = "XYZ"
    rows.loc[11, "value"] = "-5"

    import mlflow
    predicted = mlflow.pyfunc.load_model("models:/tbml/1").predict(rows)
    assert len(predicted) == 300 and predicted["invoice_id"].tolist() == rows["invoice_id"].tolist()
    bad = predicted.loc[[3, 10, 11]]
    assert bad["risk"].isna().all()
    assert bad["quarantine_reason"].tolist() == ["bad_date", "unknown_currency", "negative_value"]
    assert "date='2023-13-45'" in bad["quarantine_detail"].iloc[0]
    good = predicted.drop(index=[3, 10, 11])
    assert good["risk"].notna().all() and (good["quarantine_reason"] == "").all()
    # the same rows as a file, through tbml.ingest and the model in this process
    write_table(rows, store / "rows.csv")
    expected = model.score(load_invoices(store / "rows.csv").accepted).items.set_index("invoice_id")
    assert good["risk"].tolist() == expected["risk"].reindex(good["invoice_id"]).tolist()
    assert good["reasons"].tolist() == expected["reasons"].reindex(good["invoice_id"]).tolist()
    assert (good["risk"] > 0).any()  # something was found, so the comparison says something


def test_versions_carry_a_description_tags_and_the_model_card(files, store):
    import mlflow
    import tbml
    from tbml import registry
    info = tbml.train(files / "invoices.csv", files / "transfers.csv", alias="champion",
                      data_source="test files generated by tests/test_registry.py (seed 31)")
    client = mlflow.MlflowClient()
    version = client.get_model_version("tbml", str(info["version"]))
    assert version.description.startswith("Trained on test files generated by tests/test_registry.py (seed 31). "
                                          "invoices.csv: 3,000 invoice lines, ")
    assert "transfers.csv: " in version.description and "Labelled (is_laundering)" in version.description
    tags = version.tags
    assert tags["training_data_sha256"] == info["training"]["fingerprint"]
    assert tags["invoices_sha256"] == __import__("tbml.io").io.sha256_file(files / "invoices.csv")
    assert tags["labelled"] == "true" and tags["synthetic"] == "false" and tags["invoices_rows"] == "3000"
    assert float(tags["metric.pr_auc"]) == pytest.approx(info["metrics"]["pr_auc"], rel=1e-3)
    # the card beside the run, and inside the model, so it travels with the version
    card = mlflow.artifacts.load_text(f"runs:/{info['run_id']}/{registry.CARD}")
    assert card == mlflow.artifacts.load_text(f"models:/tbml/{info['version']}/artifacts/{registry.CARD}")
    assert "Trained on test files generated by tests/test_registry.py (seed 31)" in card
    assert "tbml.synth" not in card.split("## Limits")[1].split("\n")[1]
    assert info["training"]["fingerprint"] in card and "| pr_auc |" in card
    # requirements: tbml's runtime dependencies pinned, tbml itself carried as code
    from importlib.metadata import version as installed
    requirements = (Path(mlflow.pyfunc.get_model_dependencies(info["model_uri"]))).read_text().split()
    assert f"pandas=={installed('pandas')}" in requirements and f"skops=={installed('skops')}" in requirements
    assert not any(r.startswith(("tbml", "pytest")) for r in requirements)


def test_the_card_calls_data_synthetic_only_when_tbml_generate_wrote_it(tmp_path):
    import os
    import tbml
    from tbml.modelcard import describe_training, model_card
    tbml.generate_files(tmp_path / "gen", n_invoices=300, seed=3, laundering_rate=0.05)
    stats = tbml.validate_files(tmp_path / "gen" / "invoices.csv").manifest["inputs"]
    generated = describe_training(stats, True, "builtin", "USD")
    assert generated["synthetic"] and generated["data_source"].startswith("synthetic data from tbml.synth")
    assert "seed 3," in generated["data_source"]
    assert "Trained on synthetic data from `tbml.synth`" in model_card("m", generated, {})
    # edited after `tbml generate` wrote it: no longer vouched for
    path = tmp_path / "gen" / "invoices.csv"
    os.utime(path, (path.stat().st_atime, (tmp_path / "gen" / "generation.json").stat().st_mtime + 10))
    edited = describe_training(stats, False, "builtin", "USD")
    assert not edited["synthetic"] and "origin was not recorded" in edited["data_source"]
    card = model_card("m", edited, {"alert_rate": 0.1})
    assert "tbml.synth" not in card and "files carry no labels" in card
    said = describe_training(stats, False, "builtin", "USD", data_source="2023 customs imports, port of Antwerp")
    assert said["data_source"] == "2023 customs imports, port of Antwerp"


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
    assert (tmp_path / "a" / "forest.parquet").read_bytes() == (tmp_path / "b" / "forest.parquet").read_bytes()
    invoices, transfers = _loaded(files)
    pd.testing.assert_frame_equal(load_model(tmp_path / "a").score(invoices, transfers).items,
                                  load_model(tmp_path / "b").score(invoices, transfers).items)
    card = (tmp_path / "a" / "MODEL_CARD.md").read_text()
    assert "## Training data" in card and "## Intended use" in card and "## Limits" in card and "| pr_auc |" in card
    # written with write_table, not `tbml generate`: tbml cannot tell what these files are, and says so
    assert "Trained on files whose origin was not recorded" in card and "tbml.synth`:" not in card
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


def test_a_users_fx_table_travels_with_the_model(files, store):
    """Trained with the user's own rates: the logged model converts new rows with them, wherever it runs."""
    import dataclasses

    import mlflow

    from tbml import registry
    from tbml.config import Config
    rows = pd.read_csv(files / "invoices.csv", dtype=str, keep_default_na=False).head(300)
    months = pd.date_range("2021-01-01", "2025-12-01", freq="MS")
    table = pd.DataFrame([(day.date().isoformat(), currency, 1.0 if currency == "USD" else 3.0)
                          for currency in rows["currency"].unique() for day in months],
                         columns=["date", "currency", "per_usd"])
    table.to_csv(store / "our_rates.csv", index=False)
    config = Config()
    config = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, fx_rates=str(store / "our_rates.csv")))
    invoices = load_invoices(files / "invoices.csv", config=config).accepted
    model = TBMLModel(config).fit(invoices)
    registry.log_model(model, invoices.head(20))
    expected = registry.predict_rows(model, rows)
    (store / "our_rates.csv").rename(store / "gone.csv")  # not where the model was trained any more

    predicted = mlflow.pyfunc.load_model("models:/tbml/1").predict(rows)
    assert (predicted["quarantine_reason"] == "").all()
    pd.testing.assert_frame_equal(predicted, expected)
    assert model.config.ingest.fx_rates == str(store / "our_rates.csv")  # logging changed nothing here
