"""SLOW (about a minute and a half): the registered model runs where tbml is not installed.

One fresh virtual environment is built from nothing but the model's own requirements
(``mlflow.pyfunc.get_model_dependencies``, pinned with requirements/constraints.txt as the project is),
and a process in it, started from an empty folder with no repository on ``sys.path``, loads the model
from the registry and scores invoice rows as a user's file holds them.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tbml.ingest import load_invoices
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.synth import generate

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib.util, json, os, sys
import pandas as pd
assert importlib.util.find_spec("tbml") is None, "tbml is installed in this environment"
import mlflow
model = mlflow.pyfunc.load_model("models:/tbml@champion")
import tbml
rows = pd.read_parquet("rows.parquet")
model.predict(rows).to_parquet("predicted.parquet")
package = os.path.dirname(tbml.__file__)
json.dump({"tbml": package, "sys_path": sys.path,
           "model_folder_has_MLmodel": os.path.exists(os.path.join(package, "..", "..", "MLmodel"))},
          open("where.json", "w"))
"""


def test_the_registered_model_loads_and_predicts_in_a_fresh_venv_built_from_its_requirements(
        tmp_path, monkeypatch):
    import mlflow

    from tbml import registry

    store = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    data = generate(2_000, seed=41, laundering_rate=0.05)
    write_table(data.invoices, tmp_path / "invoices.csv")
    invoices = load_invoices(tmp_path / "invoices.csv").accepted
    model = TBMLModel().fit(invoices)
    registry.log_model(model, invoices.head(20), alias="champion")
    requirements = mlflow.pyfunc.get_model_dependencies("models:/tbml@champion")

    venv = tmp_path / "venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "-r", requirements, "-c", str(REPO / "requirements" / "constraints.txt")],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    print(f"fresh venv built in {time.perf_counter() - started:.0f} s")

    rows = pd.read_csv(tmp_path / "invoices.csv", dtype=str, keep_default_na=False).head(400)
    rows.loc[7, "hs_code"] = "12AB"
    work = tmp_path / "elsewhere"
    work.mkdir()
    rows.to_parquet(work / "rows.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["MLFLOW_TRACKING_URI"] = store
    ran = subprocess.run([str(python), "-c", SCRIPT], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]

    where = json.loads((work / "where.json").read_text())
    # tbml came from the model's own code folder, not from this repository
    assert where["model_folder_has_MLmodel"], where["tbml"]
    assert Path(where["tbml"]).parent.name == "code"
    assert not Path(where["tbml"]).is_relative_to(REPO)
    assert not any(p and Path(p).resolve().is_relative_to(REPO) for p in where["sys_path"] if p != "")

    predicted = pd.read_parquet(work / "predicted.parquet")
    assert predicted["invoice_id"].tolist() == rows["invoice_id"].tolist()
    assert predicted.loc[7, "quarantine_reason"] == "bad_hs_code" and pd.isna(predicted.loc[7, "risk"])
    # the same scores as here, where tbml is the repository's
    here = registry.predict_rows(model, rows)
    pd.testing.assert_series_equal(predicted["risk"], here["risk"])
    assert predicted["reasons"].tolist() == here["reasons"].tolist()
