"""Which items become alerts: as many as a team can work (a budget), part of them spent on exploration.

A budget is a number of alerts (``500``) or a share of the items scored (``1%``). Without one ("auto"),
the alerts are the items at or above ``fusion.alert_threshold``, but never more than ``max_alert_share``
of the items: a file on which the evidence fires everywhere says more about the file than about
laundering, and a team cannot work a fifth of a file.

**Exploration** (after DATE, Kim et al., KDD 2020): a share of the budget goes to items the alerts would
otherwise never show, so that the labels investigators give back do not only confirm what the model
already believes. With a supervised ranker, those are the items it is least sure of or has never seen the
like of (no labelled line of the same importer, exporter, declarant or goods), preferring those with more
unsupervised evidence; without one, the riskiest items of the HS chapters the other alerts leave out.
Each says so in its reasons and in ``selected_by``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tbml.errors import ConfigError

# The alert cap of "auto" never cuts below this many alerts: a team can always look at a couple of dozen.
MIN_CAP = 25
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_budget(value) -> tuple[str, float] | None:
    """("count", 500), ("share", 0.01) or None for "auto"; anything else is an error naming the setting."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"fusion.budget: {value!r} is not a number of alerts, a percentage or auto")
    if isinstance(value, (int, float)):
        if value < 1 or value != int(value):
            raise ConfigError(f"fusion.budget: {value!r} is not a whole number of alerts (write 1% for a share)")
        return ("count", float(int(value)))
    match = _BUDGET.match(str(value))
    if not match:
        raise ConfigError(f"fusion.budget: {value!r} is not a number of alerts (500), a percentage (1%) or auto")
    number, percent = float(match.group(1)), match.group(2) == "%"
    if percent:
        if not 0 < number <= 100:
            raise ConfigError(f"fusion.budget: {value!r} must be a percentage above 0 and at most 100")
        return ("share", number / 100.0)
    if number < 1 or number != int(number):
        raise ConfigError(f"fusion.budget: {value!r} is not a whole number of alerts (write 1% for a share)")
    return ("count", number)


def budget_size(budget, n_items: int) -> int | None:
    parsed = parse_budget(budget)
    if parsed is None:
        return None
    kind, amount = parsed
    return min(n_items, int(amount) if kind == "count" else int(round(amount * n_items)))


def choose(risk: np.ndarray, *, threshold: float, budget, max_share: float, explore_share: float,
           explore_score: np.ndarray | None = None, segment: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alerted, selected_by) for items with ``risk`` (higher first; ties by position, which callers keep in
    rank order). ``explore_score`` ranks exploration candidates when a supervised ranker gives one;
    otherwise ``segment`` (an HS chapter per item) decides which items the alerts leave out."""
    n = len(risk)
    order = np.argsort(-np.nan_to_num(risk, nan=-1.0), kind="stable")
    size = budget_size(budget, n)
    if size is None:  # auto: the threshold, capped (never below MIN_CAP: a small file's few alerts all stand)
        size = min(int((risk >= threshold).sum()), max(int(np.ceil(max_share * n)), MIN_CAP))
        if size == 0:
            return np.zeros(n, dtype=bool), np.full(n, "", dtype=object)
    n_explore = int(np.floor(explore_share * size))
    alerted = np.zeros(n, dtype=bool)
    alerted[order[: size - n_explore]] = True
    selected = np.where(alerted, "risk", "").astype(object)
    if n_explore:
        if explore_score is not None:
            score = np.where(alerted, -np.inf, np.nan_to_num(explore_score, nan=-np.inf))
            picks = np.argsort(-score, kind="stable")[:n_explore]
        else:
            picks = _uncovered_segments(order, alerted, segment, n_explore)
        alerted[picks] = True
        selected[picks] = "exploration"
    return alerted, selected


def _uncovered_segments(order, alerted, segment, n_explore) -> np.ndarray:
    """Riskiest items of the segments no risk-chosen alert is in, one per segment in turn, then the next."""
    if segment is None:
        rest = order[~alerted[order]]
        return rest[:n_explore]
    seg = pd.Series(segment).fillna("").astype(str).to_numpy()
    covered = set(seg[alerted])
    rest = order[~alerted[order]]
    fresh = rest[~np.isin(seg[rest], list(covered))]
    if not len(fresh):
        return rest[:n_explore]
    # the n-th riskiest of each uncovered segment, for n = 1, 2, ...: breadth before depth
    nth = pd.Series(seg[fresh]).groupby(seg[fresh], sort=False).cumcount().to_numpy()
    picks = fresh[np.argsort(nth, kind="stable")][:n_explore]
    if len(picks) < n_explore:
        others = rest[~np.isin(rest, picks)]
        picks = np.concatenate([picks, others[: n_explore - len(picks)]])
    return picks


def temper(components: pd.DataFrame, kinds: np.ndarray, reference: float, pseudo: float = 100.0,
           totals: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Each component scaled by how common it is among the items of its kind (invoice lines, payments).

    Evidence found on at most ``reference`` of the items keeps its weight; found on a share s above it,
    its weight is multiplied by ln(s) / ln(reference): 1 at the reference, 0 when every item has it. The
    share is shrunk towards the reference by ``pseudo`` items, so a small file's chance counts do not move
    the weights. ``totals`` gives a kind's count where its items are only part of it (payments: only the
    unmatched ones are items, so the share is of all payments). Returns the scaled frame and, per component
    tempered below 99%, its share and factor."""
    values = components.to_numpy(dtype=float).copy()
    said = {}
    kinds = np.asarray(kinds, dtype=object)
    for kind in pd.unique(kinds):
        rows = kinds == kind
        fired = (values[rows] > 0).sum(axis=0)
        total = max(int(rows.sum()), int((totals or {}).get(kind, 0)))
        share = (fired + pseudo * reference) / (total + pseudo)
        with np.errstate(divide="ignore", invalid="ignore"):  # a reference of 1 turns tempering off
            factor = np.where(share > reference, np.log(share) / np.log(reference), 1.0)
        factor = np.clip(factor, 0.0, 1.0)
        values[rows] *= factor
        for j in np.flatnonzero(factor < 0.99):
            name = components.columns[j]
            said[f"{name} ({kind})"] = {"share": round(float(fired[j] / total), 4), "factor": round(float(factor[j]), 3)}
    return pd.DataFrame(values, index=components.index, columns=components.columns), said
