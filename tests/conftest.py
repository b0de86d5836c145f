from pathlib import Path

import pytest

from tbml.synth import generate

from tbml.defaults import data_path

DATA = Path(__file__).parent / "data"
MAPPINGS = data_path("mappings")  # shipped with the package
EXAMPLES = data_path("examples")


@pytest.fixture(scope="session")
def small_synthetic():
    """Generated once per test session: 20,000 invoices, seed 11, 4% laundering cases."""
    return generate(n_invoices=20_000, laundering_rate=0.04, seed=11)


@pytest.fixture(scope="session")
def scored_run(tmp_path_factory):
    """A folder written by `tbml score` on 6,000 generated invoices with transfers (seed 5, 4% cases)."""
    from tbml.api import generate_files, score_files

    root = tmp_path_factory.mktemp("scored_run")
    generate_files(root / "data", n_invoices=6000, seed=5, laundering_rate=0.04)
    score_files(root / "data" / "invoices.csv", root / "data" / "transfers.csv", out_dir=root / "run")
    return root / "run"
