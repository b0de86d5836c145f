"""A normal install works: the wheel, installed into a fresh virtual environment in a folder with no
repository beside it, generates, validates, scores, reports, trains, runs a batch and writes its defaults.

This builds a wheel and a virtual environment (about a minute or two): it is the only test that sees tbml
as a user who ran `pip install tbml-*.whl` does.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"


def _run(args, cwd, env=None, timeout=900):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, a clean working folder) with only the built wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
         cwd=root)
    wheel = next(dist.glob("tbml-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
          str(CONSTRAINTS), str(wheel)], cwd=root)
    work = root / "work"
    work.mkdir()
    return bin_dir, work


def _env(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MLFLOW", "VIRTUAL_ENV"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    return env


def test_the_installed_wheel_imports_from_site_packages_not_the_repository(installed):
    bin_dir, work = installed
    out = _run([str(bin_dir / "python"), "-c", "import tbml, tbml.defaults as d; print(tbml.__file__); "
                "print(d.data_path('rules.yaml').is_file())"], cwd=work, env=_env(work)).stdout.split()
    assert "site-packages" in out[0] and not out[0].startswith(str(ROOT)) and out[1] == "True"


def test_generate_validate_score_report_train_batch_and_init(installed):
    bin_dir, work = installed
    tbml, env = str(bin_dir / "tbml"), _env(work)
    _run([tbml, "generate", "--invoices", "3000", "--seed", "3", "-o", "data"], cwd=work, env=env)
    _run([tbml, "validate", "data/invoices.csv", "--transfers", "data/transfers.csv", "-o", "checks"], cwd=work, env=env)
    scored = _run([tbml, "score", "data/invoices.csv", "--transfers", "data/transfers.csv", "-o", "run"],
                  cwd=work, env=env)
    assert " alerts at risk >= 30" in scored.stdout
    manifest = json.loads((work / "run" / "manifest.json").read_text())
    assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_quarantined"]
    assert manifest["config"]["reconciliation"]["rules"] == "builtin"
    _run([tbml, "report", "run"], cwd=work, env=env)
    assert (work / "run" / "report.html").stat().st_size > 10_000
    _run([tbml, "train", "data/invoices.csv", "--transfers", "data/transfers.csv", "--save", "model",
          "--no-register"], cwd=work, env=env)
    _run([tbml, "score", "data/invoices.csv", "--model", "model", "-o", "run2"], cwd=work, env=env)
    # the shipped mappings and example files, by name, as a new user would first try them
    _run([tbml, "init", "settings"], cwd=work, env=env)
    examples = work / "settings" / "examples"
    _run([tbml, "score", str(examples / "customs_declarations.csv"), "--mapping", "customs_import_declarations",
          "--transfers", str(examples / "bank_wires.csv"), "--transfers-mapping", "bank_wire_transfers",
          "--config", "settings/config.yaml", "-o", "run3"], cwd=work, env=env)
    job = work / "job.yaml"
    job.write_text(textwrap.dedent("""\
        inputs:
          - invoices: data/invoices.csv
            transfers: "{parent}/transfers.csv"
        output: nightly
        """))
    _run([tbml, "batch", str(job)], cwd=work, env=env)
    assert json.loads((work / "nightly" / "batch.json").read_text())["files"][0]["status"] == "scored"
