"""Hostile or mistaken configs and mappings: one line naming the file and the key, exit 1 (batch job
values: tests/test_batch.py::test_job_mistakes_are_one_line)."""

import time

import pytest
from click.testing import CliRunner

from tbml.cli import cli
from tbml.config import Config, config_from_dict, load_config
from tbml.errors import ConfigError, MappingError
from tbml.io import read_yaml
from tbml.mapping import Mapping

from .conftest import DATA

BAD = DATA / "bad" / "config"


@pytest.mark.parametrize("name, message", [
    ("n_estimators_zero.yaml", "forest.n_estimators: must be >= 1 and <= 10000, got 0"),
    ("unknown_peer_key.yaml", "pricing.levels[0]: 'port_of_loading' is not one of hs6, hs4, hs2, origin, destination, period"),
    ("period_fortnight.yaml", "pricing.period: 'fortnight' is not one of month, quarter, year"),
    ("unknown_currency.yaml", "ingest.reporting_currency: 'XYZ' is not an ISO 4217 currency code"),
    ("duplicate_key.yaml", "key 'alert_threshold' appears twice"),
    ("alias_bomb.yaml", "config file refused: aliases expand it to more than 100,000 extra values"),
    ("alias_loop.yaml", "config file refused: an alias refers to a value that contains it"),
])
def test_a_bad_config_is_one_line_naming_file_and_key(tmp_path, name, message):
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["validate", str(DATA / "bad_rows.csv"), "--config", str(BAD / name),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {BAD / name}: ") and message in result.output
    assert len(result.output.splitlines()) == 1
    assert time.perf_counter() - started < 5  # a bomb is refused before it expands
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data, message", [
    ({"forest": {"max_samples": 1}}, "forest.max_samples: must be >= 2, got 1"),
    ({"forest": {"contamination": 0.7}}, "forest.contamination: must be > 0 and <= 0.5, got 0.7"),
    ({"forest": {"features": ["unit_price_fence", "shoe_size"]}}, "forest.features[1]: 'shoe_size' is not one of"),
    ({"pricing": {"threshold": -1}}, "pricing.threshold: must be >= 0, got -1"),
    ({"pricing": {"min_group_size": "big"}}, "pricing.min_group_size: expected 'auto' or a whole number, got 'big'"),
    ({"pricing": {"levels": []}}, "pricing.levels: is empty"),
    ({"pricing": {"levels": ["hs6"]}}, "pricing.levels[0]: expected a list of hs6"),
    ({"ingest": {"restore_hs_leading_zero": "sometimes"}}, "ingest.restore_hs_leading_zero: 'sometimes' is not one of auto, always, never"),
    ({"ingest": {"date_failure_file_error_share": 0}}, "ingest.date_failure_file_error_share: must be > 0 and <= 1"),
    ({"ingest": {"reporting_currency": "usd"}}, "did you mean 'USD'?"),
    ({"reconciliation": {"window_after_days": -5}}, "reconciliation.window_after_days: must be >= 0, got -5"),
    ({"reconciliation": {"structuring_band": 1.0}}, "reconciliation.structuring_band: must be > 0 and < 1, got 1"),
    ({"reconciliation": {"round_amount_unit": 0}}, "reconciliation.round_amount_unit: must be > 0, got 0"),
    ({"fusion": {"high": 1.5}}, "fusion.high: must be >= 0 and <= 1, got 1.5"),
    ({"fusion": {"price_scale": float("nan")}}, "fusion.price_scale: must be a finite number, got nan"),
    ({"fusion": {"alert_threshold": True}}, "fusion.alert_threshold: expected a number, got True"),
    ({"fusion": {"forest_from_percentile": 1}}, "fusion.forest_from_percentile: must be >= 0 and < 1, got 1"),
    ({"forest": {"n_trees": 3}}, "unknown key 'forest.n_trees'"),
    ({"forest": 5}, "forest: expected a mapping of keys, got 5"),
])
def test_every_value_is_range_and_type_checked(data, message):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "c.yaml")
    assert str(caught.value).startswith("c.yaml: ") and message in str(caught.value)


def test_defaults_and_saved_configs_still_load(tmp_path):
    assert config_from_dict(Config().to_dict()) == Config()  # what a saved model or a batch fingerprint holds
    path = tmp_path / "c.yaml"
    path.write_text("pricing: {threshold: 2.0, period: month}\n")
    assert load_config(path).pricing.period == "month"


def test_yaml_caps_on_size_aliases_and_kind(tmp_path):
    many = tmp_path / "many.yaml"
    many.write_text("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    with pytest.raises(MappingError, match=r"many.yaml: mapping file refused: more than 100 aliases"):
        read_yaml(many, MappingError, "mapping")
    few = tmp_path / "few.yaml"
    few.write_text("a: &a x\nb: [*a, *a]\n")
    assert read_yaml(few, MappingError, "mapping") == {"a": "x", "b": ["x", "x"]}  # honest aliases still work
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (5 << 20) + "\n")
    with pytest.raises(ConfigError, match=r"big.yaml: config file is 5,242,883 bytes; tbml reads YAML files of at most"):
        read_yaml(big, ConfigError, "config")
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="deep.yaml: "):
        read_yaml(deep, ConfigError, "config")
    with pytest.raises(ConfigError, match=r"config file is not a regular file"):
        read_yaml(tmp_path, ConfigError, "config")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.yaml: config file is not UTF-8 text"):
        read_yaml(latin, ConfigError, "config")


def test_a_mapping_alias_bomb_is_refused(tmp_path):
    with pytest.raises(MappingError, match="alias_bomb.yaml: mapping file refused"):
        Mapping.load(BAD / "alias_bomb.yaml", "invoices")
