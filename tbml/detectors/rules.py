"""Red-flag rules: each FATF / Egmont indicator the data can show, as a named rule with a severity, its
thresholds in the rules YAML (shipped as ``tbml/data/rules.yaml``) and a reason filled with the line's own figures.

Rules read the item frame built by ``tbml.model`` (one row per invoice line or unlinked transfer, with
every feature). A rule whose columns are absent from the data is skipped and listed in ``skipped``, never a
crash: a customs file without exporter ids simply cannot show circular trade.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tbml.defaults import resolve
from tbml.errors import ConfigError
from tbml.io import read_yaml
from tbml.wording import number, per_unit, unit_name

RULES_FILE = "rules.yaml"  # the shipped rules, under tbml/data
SEVERITIES = ("high", "medium", "low")


def _col(f: pd.DataFrame, name: str, default=0):
    return f[name] if name in f else pd.Series(default, index=f.index)


# rule -> (columns it needs, condition over the item frame and its parameters)
CONDITIONS = {
    "paid_more_than_once": (("n_full_referenced",), lambda f, p: f["n_full_referenced"] >= p["min_full_payments"]),
    "same_goods_invoiced_again": (("repeat_same_goods",), lambda f, p: f["repeat_same_goods"] >= 1),
    "shipment_invoiced_twice": (("shipment_same_goods",), lambda f, p: f["shipment_same_goods"] >= 1),
    "third_party_payment": (("third_party_payer",), lambda f, p: f["third_party_payer"] | _col(f, "third_party_payee", False)),
    "payment_outside_corridor": (("payer_outside_corridor",),
                                 lambda f, p: f["payer_outside_corridor"] | _col(f, "payee_outside_corridor", False)),
    "split_under_threshold": (("split_payments",),
                              lambda f, p: (f["item"] == "invoice") & (f["split_payments"] >= p["min_payments"])),
    "structured_payments": (("structuring_count",),
                            lambda f, p: (f["item"] == "transfer") & (f["structuring_count"] >= p["min_payments"])),
    # tbml 0.1's structuring rule (the payer-payee pair's near-threshold payments, on every item they touch),
    # kept so a model saved with it, which carries its rules file, scores as it did; the shipped rules.yaml now
    # uses split_under_threshold and structured_payments
    "structuring": (("structuring_count",), lambda f, p: f["structuring_count"] >= p["min_payments"]),
    "cash_or_exchange_house": (("cash_like",), lambda f, p: f["cash_like"]),
    "round_amount": (("round_amount",), lambda f, p: f["round_amount"] & (f["item"] == "transfer")),
    "high_risk_jurisdiction": (("high_risk_country",), lambda f, p: f["high_risk_country"]),
    "unrelated_goods": (("chapter_prior_share", "prior_lines"),
                        lambda f, p: (f["chapter_prior_share"] == 0) & (f["prior_lines"] >= p["min_history"])),
    "circular_trade": (("cycle_length",), lambda f, p: f["cycle_length"] >= p["min_traders"]),
    "two_way_trade": (("cycle_length",), lambda f, p: f["cycle_length"] == 2),
    "round_trip": (("round_trip",), lambda f, p: f["round_trip"]),
    "weight_quantity_mismatch": (("kg_per_unit_fence",), lambda f, p: f["kg_per_unit_fence"].abs() >= p["fence"]),
    "phantom_payment": (("ref_unknown",), lambda f, p: f["ref_unknown"]),
    "unmatched_payment": (("linked", "ref_unknown", "payee_is_trader"),
                          lambda f, p: (f["item"] == "transfer") & ~f["linked"] & ~f["ref_unknown"]
                          & ~_col(f, "ref_rejected", False) & f["payee_is_trader"]),
    # the invoice it pays was in the file but failed validation: no evidence of a phantom, a line to check
    "payment_for_rejected_invoice": (("ref_rejected",), lambda f, p: f["ref_rejected"]),
    # a value of 0 has no price (log 0) for the price detector to judge, yet for goods of real weight it is
    # the strongest under-invoicing there is; said by weight where the line gives one, else by quantity
    "zero_value_by_weight": (("value", "gross_weight_kg"),
                             lambda f, p: (f["item"] == "invoice") & (f["value"] == 0) & (f["gross_weight_kg"] > 0)),
    "zero_value_by_quantity": (("value", "quantity"),
                               lambda f, p: (f["item"] == "invoice") & (f["value"] == 0) & (f["quantity"] > 0)
                               & ~(_col(f, "gross_weight_kg", 0).fillna(0) > 0)),
}


@dataclass(frozen=True)
class Rule:
    name: str
    typology: str
    severity: str
    reason: str
    params: dict = field(default_factory=dict)


def load_rules(path: str | Path | None = None) -> list[Rule]:
    """The rules of ``path`` (default: the shipped ``rules.yaml``) that are enabled, checked.

    Every mistake is a ``ConfigError`` naming the file and the rule: an unknown rule, a missing or non-text
    typology, severity or reason, a parameter that is not a finite number, and a reason whose template asks
    for more than a figure by name (see ``check_template``).
    """
    path = resolve(path, RULES_FILE)
    try:
        data = read_yaml(path, ConfigError, "rules")
    except (UnicodeDecodeError, RecursionError, OSError) as exc:
        raise ConfigError(f"{path}: cannot read the rules ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of rule names to rules, got {type(data).__name__}")
    rules = []
    for name, spec in data.items():
        if name not in CONDITIONS:
            raise ConfigError(f"{path}: unknown rule {name!r}; known rules: {', '.join(CONDITIONS)}")
        if spec is not None and not isinstance(spec, dict):
            raise ConfigError(f"{path}: rule {name}: expected a mapping of settings, got {type(spec).__name__}")
        spec = dict(spec or {})
        if not spec.pop("enabled", True):
            continue
        try:
            typology, severity, reason = spec.pop("typology"), spec.pop("severity"), spec.pop("reason")
        except KeyError as missing:
            raise ConfigError(f"{path}: rule {name}: needs {missing.args[0]}") from None
        if not isinstance(severity, str) or severity not in SEVERITIES:
            raise ConfigError(f"{path}: rule {name}: severity must be one of {SEVERITIES}, got {severity!r}")
        for key, text in (("typology", typology), ("reason", reason)):
            if not isinstance(text, str):
                raise ConfigError(f"{path}: rule {name}: {key} must be text, got {type(text).__name__}")
        for key, value in spec.items():
            if not (isinstance(key, str) and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and np.isfinite(value)):
                raise ConfigError(f"{path}: rule {name}: parameter {key!r} must be a finite number, got {value!r}")
        try:
            check_template(reason)
        except ValueError as exc:
            raise ConfigError(f"{path}: rule {name}: reason {exc}") from None
        rules.append(Rule(name, typology, severity, reason, _Params(spec, f"{path}: rule {name}")))
    return rules


class _Params(dict):
    """A rule's parameters; one its condition needs but the file lacks is a one-line ``ConfigError``."""

    def __init__(self, values: dict, where: str):
        super().__init__(values)
        self.where = where

    def __missing__(self, key):
        raise ConfigError(f"{self.where}: needs the parameter {key!r}")


def evaluate_rules(items: pd.DataFrame, rules: list[Rule], context: dict) -> tuple[pd.DataFrame, list[str]]:
    """Which rules each item hits (a boolean frame, one column per rule that could run) and the rules
    skipped for want of columns. ``context`` supplies template values that are not columns (thresholds)."""
    hits = {}
    skipped = []
    for rule in rules:
        needed, condition = CONDITIONS[rule.name]
        if not set(needed) <= set(items.columns):
            skipped.append(rule.name)
            continue
        hits[rule.name] = condition(items, rule.params).fillna(False).to_numpy(dtype=bool)
    return pd.DataFrame(hits, index=items.index), skipped


# columns that hold a unit code: a sentence says them in words ("pieces", "{quantity_unit:per}" -> "per piece")
UNIT_FIELDS = ("quantity_unit", "unit")


def render(rule: Rule, row: dict, context: dict) -> str:
    """The rule's reason with the item's figures; a missing figure shows as '?' rather than failing.

    A plain field (``{value}``) prints numbers with ``tbml.wording.number`` (significant digits kept, thousands
    separated) and unit codes in words; an explicit format (``{value:,.0f}``, from an older rules file) is obeyed.
    Only what ``check_template`` allows is rendered: a field by name, with a plain format.
    """
    values = {k: _shown(k, v) for k, v in {**context, **rule.params, **row}.items()}
    parts = []
    for literal, name, spec in _template_parts(rule.reason):
        parts.append(literal)
        if name is not None:
            value = values.get(name, "?")
            try:
                parts.append(format(value, spec))
            except (ValueError, TypeError):  # a format met a missing figure ("?"): show it plainly
                parts.append(format(value, ""))
    return "".join(parts)


# what a reason may ask of a figure: a format of at most 40 characters' width and 20 digits' precision
# (``{x:>999999999}`` would allocate a gigabyte), or ``per`` for a unit ("per piece")
_SPEC = re.compile(r"(?:[<>^])?[+\- ]?0?(?P<width>\d{1,2})?[,_]?(?:\.(?P<precision>\d{1,2}))?[dfFeEgG%]?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_WIDTH, MAX_PRECISION = 40, 20


def check_template(template: str) -> None:
    """Raise ``ValueError`` (the message says what is wrong) unless every field of ``template`` is a plain name
    (no attribute ``.``, index ``[``, conversion ``!r`` or nested field) with a plain numeric format, or ``per``."""
    _template_parts(template)


@lru_cache(maxsize=1024)
def _template_parts(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """(literal text, field name or None, format spec) of ``template``, checked as ``check_template`` says."""
    # an older rules file (a saved model carries its own) wrote "per {quantity_unit}": "per piece", not "pieces"
    template = template.replace("per {quantity_unit}", "{quantity_unit:per}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{template[:80]!r} is not a valid template ({exc})") from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None, ""))
            continue
        if not _NAME.fullmatch(name):
            raise ValueError(f"field {{{name}}} must be a plain name (no '.', '[', or position)")
        if conversion is not None:
            raise ValueError(f"field {{{name}!{conversion}}} may not use a conversion")
        plain = _SPEC.fullmatch(spec or "")
        if spec != "per" and (plain is None or int(plain["width"] or 0) > MAX_WIDTH
                              or int(plain["precision"] or 0) > MAX_PRECISION):
            raise ValueError(f"field {{{name}:{spec}}} has a format other than a plain number of width at most "
                             f"{MAX_WIDTH} (such as ',.0f' or '+.1f') or 'per'")
        parts.append((literal, name, spec or ""))
    return tuple(parts)


class _Figure(float):
    """A number that prints as an investigator reads it unless the template gives a format."""

    def __format__(self, spec: str) -> str:
        return number(self) if not spec else format(float(self), spec)

    def __str__(self) -> str:
        return number(self)


class _Unit(str):
    """A unit code that prints in words: "pieces" plain, "per piece" with the format ``per``."""

    def __format__(self, spec: str) -> str:
        if spec == "per":
            return per_unit(str(self))
        return unit_name(str(self), plural=True) if not spec else format(str(self), spec)


def _shown(name: str, value):
    if _missing(value):
        return "?"
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _Figure(value)
    if name in UNIT_FIELDS and isinstance(value, str):
        return _Unit(value)
    return value


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
