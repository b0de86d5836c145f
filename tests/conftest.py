from pathlib import Path

import pytest

from tbml.synth import generate

DATA = Path(__file__).parent / "data"
MAPPINGS = Path(__file__).parents[1] / "configs" / "mappings"


@pytest.fixture(scope="session")
def small_synthetic():
    """Generated once per test session: 20,000 invoices, seed 11, 4% laundering cases."""
    return generate(n_invoices=20_000, laundering_rate=0.04, seed=11)
