"""Units, FX and config: the pieces normalisation is made of."""

import numpy as np
import pandas as pd
import pytest

from tbml.config import Config, load_config
from tbml.errors import ConfigError, InputFileError, MappingError
from tbml.fx import FxTable
from tbml.mapping import Mapping
from tbml.units import normalise_units


def test_units_convert_within_a_dimension_and_never_across():
    quantity = pd.Series([2.0, 500.0, 3.0, 1.0, 12.0, 4.0, 7.0, 5.0, 2.0])
    unit = pd.Series(["TNE", "g", "Dozen", "PR", "pcs", "m3", "bags", None, "CT"])
    out = normalise_units(quantity, unit)
    assert out["quantity_unit"].tolist()[:6] == ["KGM", "KGM", "NAR", "NPR", "NAR", "LTR"]
    assert out["quantity"].tolist()[:6] == [2000.0, 0.5, 36.0, 1.0, 12.0, 4000.0]
    assert out.loc[6, "quantity_unit"] == "BAGS" and out.loc[6, "unit_status"] == "unknown"
    assert pd.isna(out.loc[7, "quantity_unit"]) and out.loc[7, "unit_status"] == "missing"
    assert out.loc[8, "quantity"] == pytest.approx(4e-4)  # carats are mass
    assert out["unit_status"].tolist()[:5] == ["converted", "converted", "converted", "canonical", "canonical"]
    assert out["quantity_unit_declared"].tolist()[1] == "g"


def test_every_unit_converts_into_the_canonical_set():
    from tbml.units import _ALIASES, _CONVERSIONS, CANONICAL_UNITS
    assert {target for target, _ in _CONVERSIONS.values()} == set(CANONICAL_UNITS)
    assert set(_ALIASES.values()) <= set(_CONVERSIONS)  # every alias names a unit tbml can convert


def test_units_empty_input():
    out = normalise_units(pd.Series([], dtype=float), pd.Series([], dtype="string"))
    assert len(out) == 0 and list(out.columns) == ["quantity", "quantity_unit", "quantity_unit_declared", "unit_status"]


def test_config_defaults_overrides_and_errors(tmp_path):
    assert load_config().ingest.reporting_currency == "USD"
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  reporting_currency: EUR\n  fx_max_age_days: 40\n")
    config = load_config(path)
    assert config.ingest.reporting_currency == "EUR" and config.ingest.fx_max_age_days == 40
    assert config.ingest.fx_rates == "builtin"
    path.write_text("ingest:\n  fx_max_age_dayz: 40\n")
    with pytest.raises(ConfigError, match="unknown key 'ingest.fx_max_age_dayz'"):
        load_config(path)
    path.write_text("ingest:\n  fx_max_age_days: forty\n")
    with pytest.raises(ConfigError, match="ingest.fx_max_age_days: expected a whole number, got 'forty'"):
        load_config(path)


def test_shipped_default_config_equals_the_code_defaults():
    from tbml.defaults import data_path
    assert load_config(data_path("default.yaml")) == Config()


@pytest.mark.parametrize(
    "text, message",
    [
        ("kind: invoices\ncolumns:\n  invoice_nr: X\n", "'invoice_nr' is not a canonical invoices column"),
        ("kind: invoices\ncolumns:\n  date: D\nconstants:\n  date: '2023-01-01'\n", "both mapped to a column and set"),
        ("kind: payments\n", "kind must be 'invoices' or 'transfers'"),
        ("kind: invoices\nread:\n  sep: ';'\n", "read: unknown key 'sep'"),
        ("kind: invoices\ncolumn:\n  date: D\n", "unknown key 'column'"),
    ],
)
def test_mapping_errors(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message):
        Mapping.load(path)


def test_mapping_for_the_wrong_kind(tmp_path):
    from tests.conftest import MAPPINGS
    with pytest.raises(MappingError, match="is a mapping for transfers, but it was given for invoices"):
        Mapping.load(MAPPINGS / "bank_wire_transfers.yaml", "invoices")
