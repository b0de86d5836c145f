"""MLflow: train runs, registered versions, aliases, and loading a model wherever it was logged.

The tracking store is MLflow's default (a SQLite file ``mlflow.db`` in the working folder, artifacts in
``mlruns/``) unless ``MLFLOW_TRACKING_URI`` names another, such as a remote ``mlflow server``. Versions
move by aliases (``champion``, ``challenger``), never by the deprecated stages.

The logged model is a pyfunc that runs where tbml is not installed: it carries the ``tbml`` package as
code (MLflow puts the model's ``code/`` folder first on ``sys.path`` when loading; a process that has
imported tbml already keeps that one, and ``persist`` checks the saved format) and lists tbml's runtime
dependencies pinned to the versions it was logged with, so ``mlflow.pyfunc.get_model_dependencies``
gives a requirements file that builds a working environment. ``predict`` takes invoice rows as a user's
file holds them (canonical columns, raw values) and validates and normalises them itself, or rows already
normalised by ``tbml.ingest``; it returns one row per input row, in input order (see ``predict_rows``).
``load(uri)`` gives the ``TBMLModel`` itself, which also takes transfers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

import tbml
from tbml.errors import TBMLError
from tbml.fx import BUILTIN
from tbml.persist import model_json, read_model_file

ARTIFACT = "tbml_model"
CARD = "MODEL_CARD.md"
FX_TABLE = "fx_rates"  # a user's FX table the model was trained with travels with it under this name
DEFAULT_NAME = "tbml"
OUTPUT_COLUMNS = ["invoice_id", "risk", "suspected_typology", "reasons", "rules_hit", "quarantine_reason",
                  "quarantine_detail"]
NORMALISED = ("reporting_value", "hs6")  # columns only tbml.ingest adds: a frame with them is normalised already


class TBMLPyfunc(mlflow.pyfunc.PythonModel):
    """The whole fitted chain as one MLflow model; loading it needs no training data."""

    def load_context(self, context):
        from tbml.model import TBMLModel
        self.model = TBMLModel.load(context.artifacts[ARTIFACT])
        if FX_TABLE in context.artifacts:  # the trainer's own rate table, where the model now lives
            config = self.model.config
            self.model.config = dataclasses.replace(config, ingest=dataclasses.replace(
                config.ingest, fx_rates=context.artifacts[FX_TABLE]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return predict_rows(self.model, pd.DataFrame(model_input))


def predict_rows(model, rows: pd.DataFrame) -> pd.DataFrame:
    """Score invoice rows with ``model``: one output row per input row, in input order.

    ``rows`` in the canonical layout with raw values (dates as text, codes, values in their own currency)
    go through ``tbml.ingest`` with the model's config; a row that fails validation gets risk NaN and its
    ``quarantine_reason`` (codes) and ``quarantine_detail`` (column, value, what was expected). Rows that
    already carry ``reporting_value`` and ``hs6`` are normalised already and are scored as they are.
    Columns: ``OUTPUT_COLUMNS``.
    """
    n = len(rows)
    out = pd.DataFrame({"invoice_id": _ids(rows), "risk": np.full(n, np.nan)})
    for name in OUTPUT_COLUMNS[2:]:
        out[name] = pd.Series("", index=out.index, dtype=object)
    if n == 0:
        return out
    if all(name in rows for name in NORMALISED):
        accepted = rows.reset_index(drop=True).assign(source_row=np.arange(1, n + 1))
        quarantined = None
    else:
        accepted, quarantined = _ingest(rows, model.config)
    if quarantined is not None and len(quarantined):
        at = quarantined["source_row"].to_numpy(dtype=np.int64) - 1
        out.loc[at, "quarantine_reason"] = quarantined["reasons"].to_numpy(dtype=object)
        out.loc[at, "quarantine_detail"] = quarantined["detail"].to_numpy(dtype=object)
    if len(accepted):
        items = model.score(accepted).items
        at = items["source_row"].to_numpy(dtype=np.int64) - 1
        for name in OUTPUT_COLUMNS[:5]:
            values = items[name].to_numpy(dtype=float if name == "risk" else object)
            out.loc[at, name] = values
    return out


def _ids(rows: pd.DataFrame) -> pd.Series:
    if "invoice_id" not in rows:
        return pd.Series(None, index=pd.RangeIndex(len(rows)), dtype=object)
    return pd.Series(rows["invoice_id"].astype("string").to_numpy(dtype=object), index=pd.RangeIndex(len(rows)))


def _ingest(rows: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accepted and quarantined rows of ``rows``, through the same pipeline as a file (tbml.ingest).

    The rows go through a temporary Parquet file, so a frame and a file are checked by one code path;
    their positions come back as ``source_row`` (1 = the first row).
    """
    from tbml.ingest import load_table

    frame = rows.reset_index(drop=True)
    for name in frame.columns:
        if frame[name].dtype == object:  # mixed Python values (JSON input): text, as a CSV file holds them
            frame[name] = frame[name].astype("string")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model_input.parquet"
        frame.to_parquet(path, index=False)
        try:
            result = load_table(path, "invoices", config=config)
        except TBMLError as exc:  # the message names the file: here it is the model's input
            raise type(exc)(str(exc).replace(str(path), "model input")) from None
    return result.accepted, result.quarantined


def canonical_rows(invoices: pd.DataFrame) -> pd.DataFrame:
    """Normalised invoice lines back in the canonical layout a user's file has: canonical columns only,
    dates as ISO text, values in their own currency (quantities in their canonical unit)."""
    from tbml.schema import LABEL_COLUMNS, columns
    names = [c.name for c in (*columns("invoices"), *LABEL_COLUMNS) if c.name in invoices]
    rows = invoices[names].reset_index(drop=True).copy()
    rows["date"] = pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d")
    return rows


def requirements() -> list[str]:
    """tbml's runtime dependencies, each pinned to the version installed here.

    They are read from tbml's installed metadata, so a dependency added to pyproject.toml follows by
    itself; listing them also spares MLflow's ~4 s requirement inference. tbml itself is not listed: it
    travels with the model as code.
    """
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement  # ships with mlflow

    try:
        declared = [Requirement(text) for text in requires("tbml") or []]
    except PackageNotFoundError:
        raise TBMLError("tbml is not installed, so its dependencies are unknown: install it "
                        "(pip install -e . in the repository) before logging a model") from None
    runtime = [r.name for r in declared if r.marker is None or r.marker.evaluate({"extra": ""})]
    return [f"{name}=={version(name)}" for name in runtime]


def _signature(normalised: pd.DataFrame, rows: pd.DataFrame, output: pd.DataFrame):
    """Inputs: the canonical invoice columns (required as in the data contract) plus, optionally, what
    normalisation adds. Any type: the model validates values itself and quarantines what fails, where
    MLflow's typed columns would reject the whole batch for one bad date."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from tbml.schema import LABEL_COLUMNS, columns
    canonical = [*columns("invoices"), *LABEL_COLUMNS]
    names = {c.name for c in canonical}
    specs = [ColSpec(AnyType(), c.name, required=c.required) for c in canonical]
    specs += [ColSpec(AnyType(), name, required=False) for name in normalised.columns if name not in names]
    return ModelSignature(inputs=Schema(specs), outputs=infer_signature(rows, output).outputs)


def log_model(model, example: pd.DataFrame, name: str = DEFAULT_NAME, alias: str = "challenger",
              metrics: dict | None = None, params: dict | None = None, tags: dict | None = None,
              experiment: str = "tbml", evaluation: dict | None = None, training: dict | None = None) -> dict:
    """Log ``model`` in a new run with its params, metrics and tags, register a version under ``name``
    and point ``alias`` at it. Returns the run id, version and model URI.

    ``example`` holds normalised invoice lines (an input example is made from them). ``training`` is
    ``tbml.modelcard.describe_training``: with it, the run gets the model card and the version a
    description of its training data and tags with its fingerprint and metrics.
    """
    from tbml.modelcard import model_card, training_summary

    mlflow.set_experiment(experiment)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        folder = Path(tmp) / ARTIFACT  # MLflow files an artifact folder under its own name
        model.save(folder)
        artifacts = {ARTIFACT: str(folder)}
        if params:
            mlflow.log_params(params)
        if metrics:
            mlflow.log_metrics(metrics)
        if tags:
            mlflow.set_tags(tags)
        for table in ("price_reference.parquet", "kg_per_unit.parquet"):  # browsable beside the run
            mlflow.log_artifact(str(folder / table), artifact_path="reference_tables")
        if evaluation is not None:  # tbml against both baselines, as a table and as figures
            from tbml.evaluate import table
            mlflow.log_text(table(evaluation), "evaluation/evaluation.md")
            mlflow.log_dict(evaluation, "evaluation/evaluation.json")
        if training is not None:  # beside the run, and inside the model so it travels with the version
            card = Path(tmp) / CARD
            card.write_text(model_card(f"{name} (run {run.info.run_id})", training, metrics or {}))
            mlflow.log_artifact(str(card))
            artifacts[CARD] = str(card)
        fx = model.config.ingest.fx_rates
        if fx != BUILTIN and Path(fx).is_file():
            artifacts[FX_TABLE] = fx
        rows = canonical_rows(example)
        output = predict_rows(model, rows)
        # "models from code": MLflow stores tbml/mlflow_model.py and imports it on load; nothing is pickled.
        # code_paths copies the tbml package beside it (without __pycache__), so no install of tbml is needed
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("mlflow_model.py")),
                                       artifacts=artifacts, code_paths=[str(Path(tbml.__file__).parent)],
                                       signature=_signature(example, rows, output), input_example=rows.head(3),
                                       pip_requirements=requirements(), registered_model_name=name)
    version = info.registered_model_version
    client = MlflowClient()
    description = (training_summary(training, metrics) if training is not None else
                   f"tbml {tbml.__version__}; logged without a description of its training data.")
    client.update_model_version(name, version, description=description)
    for key, value in _version_tags(training, metrics).items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    return {"run_id": run.info.run_id, "name": name, "version": int(version), "alias": alias,
            "model_uri": f"models:/{name}/{version}"}


def _version_tags(training: dict | None, metrics: dict | None) -> dict[str, str]:
    """What a version is, searchable in the registry: its data fingerprint and what it scored."""
    tags = {"tbml_version": tbml.__version__}
    if training is not None:
        tags |= {"training_data_sha256": training["fingerprint"], "data_source": training["data_source"][:500],
                 "synthetic": str(training["synthetic"]).lower(), "labelled": str(training["labelled"]).lower()}
        for s in training["inputs"]:
            tags |= {f"{s['kind']}_sha256": s["sha256"], f"{s['kind']}_rows": str(s["rows_accepted"])}
    for key, value in (metrics or {}).items():
        if isinstance(value, float) and not key.endswith("_seconds"):
            tags[f"metric.{key}"] = f"{value:.4g}"
    return tags


def load(uri: str):
    """The ``TBMLModel`` behind ``uri``: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/...``, a
    logged MLflow model folder, or a folder written by ``TBMLModel.save``."""
    from tbml.model import TBMLModel
    local = Path(uri)
    if local.exists():
        if os.path.lexists(local / "model.json"):  # a link or FIFO there is the load's to refuse, by name
            return TBMLModel.load(local)
        saved = local / "artifacts" / ARTIFACT
        if saved.exists():
            return TBMLModel.load(saved)
        raise TBMLError(f"{uri}: neither a saved tbml model nor a logged MLflow tbml model")
    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/{ARTIFACT}")
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; the user needs one line
        raise TBMLError(f"{uri}: cannot load the model ({type(exc).__name__}: {exc})".replace("\n", " ")) from None
    return TBMLModel.load(folder)


def describe(uri: str) -> dict:
    """What ``uri`` names, pinned down: for ``models:/NAME@ALIAS`` the version the alias points at now and
    its run; for a saved folder the sha256 of its model.json. A report or a batch fingerprint records this,
    so "@champion" tonight and "@champion" tomorrow are told apart."""
    local = Path(uri)
    if local.exists():
        for folder in (local, local / "artifacts" / ARTIFACT):
            if os.path.lexists(folder / "model.json"):
                # read as a load reads it: a FIFO or a link out of the folder is refused, not opened
                data = read_model_file(folder, "model.json")
                state = model_json(folder, data=data)
                version = state.get("tbml_version") if isinstance(state, dict) else None
                return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(),
                        "tbml_version": version if isinstance(version, str) else None}
        raise TBMLError(f"{uri}: neither a saved tbml model nor a logged MLflow tbml model")
    info: dict = {"uri": uri}
    if uri.startswith("models:/"):
        name, _, rest = uri[len("models:/"):].partition("@")
        client = MlflowClient()
        try:
            if rest:
                version = client.get_model_version_by_alias(name, rest)
            else:
                name, _, number = name.rstrip("/").partition("/")
                version = client.get_model_version(name, number)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; the user needs one line
            raise TBMLError(f"{uri}: cannot load the model ({type(exc).__name__}: {exc})".replace("\n", " ")) from None
        info |= {"name": name, "version": int(version.version), "run_id": version.run_id}
    return info


def list_models() -> pd.DataFrame:
    client = MlflowClient()
    rows = []
    for registered in client.search_registered_models():
        aliases = {}
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        for version in client.search_model_versions(f"name='{registered.name}'"):
            rows.append({"name": registered.name, "version": int(version.version),
                         "aliases": ",".join(sorted(aliases.get(str(version.version), []))),
                         "run_id": version.run_id, "created": pd.Timestamp(version.creation_timestamp, unit="ms")})
    frame = pd.DataFrame(rows, columns=["name", "version", "aliases", "run_id", "created"])
    return frame.sort_values(["name", "version"]).reset_index(drop=True)


def show_model(name: str) -> pd.DataFrame:
    """Each version of ``name`` with its aliases and its run's metrics."""
    versions = list_models()
    versions = versions[versions["name"] == name]
    if versions.empty:
        raise TBMLError(f"no registered model named {name!r} in {mlflow.get_tracking_uri()}")
    client = MlflowClient()
    metrics = [client.get_run(run_id).data.metrics for run_id in versions["run_id"]]
    return pd.concat([versions.reset_index(drop=True), pd.DataFrame(metrics)], axis=1)


def promote(name: str, version: int, alias: str = "champion") -> None:
    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except Exception:  # noqa: BLE001
        raise TBMLError(f"model {name!r} has no version {version} in {mlflow.get_tracking_uri()}") from None
    client.set_registered_model_alias(name, alias, str(version))
