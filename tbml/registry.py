"""MLflow: train runs, registered versions, aliases, and loading a model wherever it was logged.

The tracking store is MLflow's default (a SQLite file ``mlflow.db`` in the working folder, artifacts in
``mlruns/``) unless ``MLFLOW_TRACKING_URI`` names another, such as a remote ``mlflow server``. Versions
move by aliases (``champion``, ``challenger``), never by the deprecated stages.

The logged model is a pyfunc: ``mlflow.pyfunc.load_model(uri).predict(invoices)`` scores a frame of
normalised invoice lines (the ``accepted`` frame of ``tbml.ingest``). ``load(uri)`` gives the
``TBMLModel`` itself, which also takes transfers.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from tbml.errors import TBMLError
from tbml.io import sha256_file

ARTIFACT = "tbml_model"
DEFAULT_NAME = "tbml"


class TBMLPyfunc(mlflow.pyfunc.PythonModel):
    """The whole fitted chain as one MLflow model; loading it needs no training data."""

    def load_context(self, context):
        from tbml.model import TBMLModel
        self.model = TBMLModel.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        items = self.model.score(model_input).items
        return items[["invoice_id", "risk", "suspected_typology", "reasons", "rules_hit"]]


def _requirements() -> list[str]:
    """Pinned from what is installed: listing them skips MLflow's ~4 s requirement inference."""
    from importlib.metadata import version
    names = ["numpy", "pandas", "pyarrow", "numba", "scikit-learn", "skops", "pycountry", "pyyaml", "click", "mlflow"]
    return [f"{n}=={version(n)}" for n in names]


def log_model(model, example: pd.DataFrame, name: str = DEFAULT_NAME, alias: str = "challenger",
              metrics: dict | None = None, params: dict | None = None, tags: dict | None = None,
              experiment: str = "tbml", evaluation: dict | None = None) -> dict:
    """Log ``model`` in a new run with its params, metrics and tags, register a version under ``name``
    and point ``alias`` at it. Returns the run id, version and model URI."""
    mlflow.set_experiment(experiment)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        folder = Path(tmp) / ARTIFACT  # MLflow files an artifact folder under its own name
        model.save(folder)
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
        output = model.score(example).items[["invoice_id", "risk", "suspected_typology", "reasons", "rules_hit"]]
        signature = mlflow.models.infer_signature(example, output)
        # "models from code": MLflow stores tbml/mlflow_model.py and imports it on load; nothing is pickled
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("mlflow_model.py")),
                                       artifacts={ARTIFACT: str(folder)},
                                       signature=signature, input_example=example.head(3),
                                       pip_requirements=_requirements(), registered_model_name=name)
    version = info.registered_model_version
    MlflowClient().set_registered_model_alias(name, alias, version)
    return {"run_id": run.info.run_id, "name": name, "version": int(version), "alias": alias,
            "model_uri": f"models:/{name}/{version}"}


def load(uri: str):
    """The ``TBMLModel`` behind ``uri``: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/...``, a
    logged MLflow model folder, or a folder written by ``TBMLModel.save``."""
    from tbml.model import TBMLModel
    local = Path(uri)
    if local.exists():
        if (local / "model.json").exists():
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
        for state in (local / "model.json", local / "artifacts" / ARTIFACT / "model.json"):
            if state.exists():
                return {"uri": uri, "sha256": sha256_file(state),
                        "tbml_version": json.loads(state.read_text()).get("tbml_version")}
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
