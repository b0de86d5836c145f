"""Price-deviation detector: each line's unit price and value per kg against its closest peers.

For each measure, a line is compared with the most specific peer group that holds at least
``min_group_size`` other lines, down a hierarchy (default: HS6 x origin x destination x quarter -> HS6 x
destination -> HS6 -> HS4 -> HS2, always within one unit and one declaration side). Peers are counted
without the line itself, so a line cannot make up its own reference in a small group. Where the user's own
data is too thin at HS6, an external reference table (for example unit values derived from UN Comtrade)
is used before falling back to HS4 and HS2, and the explanation says which source was used.

The score is the signed fence distance on the log scale: how many IQRs a price lies above Q3 (positive)
or below Q1 (negative), with Tukey's fences at ``threshold`` = 1.5, or the adjusted boxplot's skew-aware
fences with ``skew_adjusted=True``. A line is scored on its unit price where that can be formed and on
its value per kg otherwise, and on its mirror gap when the file has both declaration sides: the larger
distance counts. (Value per kg is always reported; scoring on it alongside the unit price measured worse
for mispricing, since weights vary honestly within an HS6; weight that does not fit the quantity is
``tbml.features.pricing.kg_per_unit_deviation``'s job.)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from tbml.detectors.base import BaseDetector
from tbml.errors import InputFileError
from tbml.features.pricing import DEFAULT_LEVELS, MEASURES, Measure, price_measures
from tbml.peer_stats import GroupStats, deviations, group_statistics
from tbml.wording import number, price_unit, ratio

_STATS = ["count", "median", "q1", "q3", "mad", "medcouple"]
_BASE_KEYS = ("unit", "side")  # never compared across: different units, FOB against CIF
_LABELS = {"hs6": "HS6", "hs4": "HS4", "hs2": "HS2", "origin": "from", "destination": "to", "period": "period"}


class PriceDeviationDetector(BaseDetector):
    """Robust peer-group price outliers with reasons.

    Parameters
    ----------
    levels : tuple of tuples of key names, default None
        Peer-group hierarchy, most specific first, from ``hs6 hs4 hs2 origin destination period``. None
        uses ``DEFAULT_LEVELS``. For a numeric matrix X, levels are built from its key columns.
    period : {"month", "quarter", "year"}, default "quarter"
    min_group_size : int or "auto", default "auto"
        Peers (excluding the line) a group needs before it may judge a line. "auto" is
        sqrt(n_lines) clipped to [5, 30], resolved in ``min_group_size_``.
    measures : tuple, default ("unit_price", "value_per_kg", "mirror_gap")
        ``mirror_gap`` applies only to files holding both export and import declarations.
    cif_fob_margin : float, default 0.06
        Freight and insurance added to an export (FOB) value before comparing it with the import (CIF).
    skew_adjusted : bool, default False
        Use the medcouple-adjusted boxplot fences (Hubert & Vandervieren 2008) instead of Tukey's.
    threshold : float, default 1.5
        Fence distance (IQRs beyond Q1 or Q3) from which a line is an outlier when contamination="auto".
    min_spread : float, default 0.05
        Floor on the IQR and the scaled MAD, on the log scale (about 5%): a group of identical prices must
        not turn a 1% difference into an infinite distance.
    specific_peer_z : float, default 2.0
        A specific peer group (a corridor and quarter, say) is used only where its median or spread differs
        from the next broader group's by more than this many standard errors; otherwise the broader group
        judges the line. 0 always takes the most specific group with enough peers.
    contamination : "auto" or float, default "auto"
        "auto" puts the outlier cut at ``threshold``; a float puts it at that share of the training lines.
    reference_prices : DataFrame, path or None
        External unit values: columns ``hs_code`` (2, 4 or 6 digits), ``unit``, ``median``, ``q1``, ``q3``,
        optional ``n``, ``origin``, ``destination``, ``source``; prices in the reporting currency.
    reporting_currency : str, default "USD"
        Only used to write the reasons.
    """

    def __init__(
        self,
        levels=None,
        period="quarter",
        min_group_size="auto",
        measures=MEASURES,
        skew_adjusted=False,
        threshold=1.5,
        min_spread=0.05,
        specific_peer_z=2.0,
        contamination="auto",
        reference_prices=None,
        reporting_currency="USD",
        cif_fob_margin=0.06,
    ):
        self.levels = levels
        self.period = period
        self.min_group_size = min_group_size
        self.measures = measures
        self.skew_adjusted = skew_adjusted
        self.threshold = threshold
        self.min_spread = min_spread
        self.specific_peer_z = specific_peer_z
        self.contamination = contamination
        self.reference_prices = reference_prices
        self.reporting_currency = reporting_currency
        self.cif_fob_margin = cif_fob_margin

    # ---- fitting -------------------------------------------------------------------------------------

    def _accepts_frame(self, X: pd.DataFrame) -> bool:
        return {"reporting_value", "hs6", "date", "exporter_country", "importer_country"} <= set(X.columns)

    def _fit(self, X) -> None:
        if self.min_group_size != "auto" and (not isinstance(self.min_group_size, int) or self.min_group_size < 1):
            raise ValueError(f"min_group_size must be 'auto' or a positive int, got {self.min_group_size!r}")
        unknown = set(self.measures) - set(MEASURES)
        if unknown:
            raise ValueError(f"unknown measure {sorted(unknown)[0]!r}; choose from {MEASURES}")
        measures = self._measures(X, fitting=True)
        n = len(X)
        self.min_group_size_ = (
            int(np.clip(round(np.sqrt(n)), 5, 30)) if self.min_group_size == "auto" else self.min_group_size
        )
        tables = []
        for measure in measures:
            valid = np.isfinite(measure.log_value)
            keys = measure.keys[valid]
            values = measure.log_value[valid]
            for index, level in enumerate(self.levels_):
                columns = list(self._base_keys_ + level)
                codes, first = _group_codes(keys, columns)
                stats = group_statistics(values, codes, len(first), medcouple=self.skew_adjusted)
                table = keys.iloc[first][columns].reset_index(drop=True)
                table.insert(0, "level", index)
                table.insert(0, "measure", measure.name)
                for name in _STATS:
                    table[name] = getattr(stats, name)
                tables.append(table)
        self.reference_prices_ = pd.concat(tables, ignore_index=True)
        self.reference_prices_["source"] = "own data"
        self.external_prices_ = (
            None if self.reference_prices is None else load_reference_prices(self.reference_prices)
        )

    def _auto_offset(self) -> float:
        return -float(self.threshold)

    def _measures(self, X, fitting: bool = False) -> list[Measure]:
        if isinstance(X, pd.DataFrame):
            if fitting:
                self.levels_ = tuple(tuple(level) for level in (self.levels or DEFAULT_LEVELS))
                self._base_keys_ = _BASE_KEYS
            return [m for m in price_measures(X, self.period, self.cif_fob_margin) if m.name in self.measures]
        # A numeric matrix: column 0 is the measure on its own scale, the rest are peer keys, most
        # specific first; each level drops the least specific key, down to all rows together.
        key_names = [f"key{i}" for i in range(1, X.shape[1])]
        if fitting:
            self.levels_ = tuple(tuple(key_names[:k]) for k in range(len(key_names), -1, -1))
            self._base_keys_ = ()
        keys = pd.DataFrame(X[:, 1:], columns=key_names)
        amount = np.full(len(X), np.nan)
        return [Measure("value", X[:, 0].astype(np.float64), keys, amount, pd.Series("", index=keys.index))]

    # ---- scoring -------------------------------------------------------------------------------------

    def _score_samples(self, X) -> np.ndarray:
        compared = self._compare(X)
        fences = np.vstack([compared[m]["fence"] for m in compared]) if compared else np.zeros((1, len(X)))
        scoring = _scoring_mask(list(compared), fences)
        worst = np.fmax.reduce(np.where(scoring, np.abs(fences), np.nan), axis=0)
        return -np.nan_to_num(worst, nan=0.0)

    def _compare(self, X) -> dict[str, dict[str, np.ndarray]]:
        """For each measure, per line: the reference chosen, and the deviations from it."""
        out = {}
        for measure in self._measures(X):
            ref = self._references(measure)
            scored = np.isfinite(measure.log_value) & (ref["count"] > 0)
            rows = np.flatnonzero(scored)
            n = len(measure.log_value)
            detail = {k: np.full(n, np.nan) for k in ("log_ratio", "robust_z", "fence")}
            if len(rows):
                stats = GroupStats(*(ref[k][rows] for k in _STATS))
                result = deviations(measure.log_value[rows], np.arange(len(rows)), stats, self.min_spread,
                                    self.skew_adjusted)
                for name, values in zip(("log_ratio", "robust_z", "fence"), result):
                    detail[name][rows] = values
            out[measure.name] = {**ref, **detail, "log_value": measure.log_value, "amount": measure.amount,
                                 "unit": measure.unit.to_numpy(dtype=object)}
        return out

    def _references(self, measure: Measure) -> dict[str, np.ndarray]:
        """The reference statistics each line is compared with, following the hierarchy.

        Levels come in blocks: those keyed by HS6 (the same goods), then the coarser ones (HS4, HS2),
        with external reference prices between the two. Within a block a line takes the most specific
        group that holds ``min_group_size`` peers and differs from the next broader such group by more
        than sampling error (``specific_peer_z`` standard errors of its median or of its log IQR);
        otherwise the broader group, whose quartiles are steadier. Where corridors really price
        differently their own groups are used; where they do not, thirty lines' noisy quartiles are not.
        """
        n = len(measure.log_value)
        ref = {k: np.full(n, np.nan) for k in _STATS}
        ref["count"] = np.zeros(n)
        ref["level"] = np.full(n, "", dtype=object)
        ref["source"] = np.full(n, "", dtype=object)
        open_rows = np.isfinite(measure.log_value)
        table = self.reference_prices_[self.reference_prices_["measure"] == measure.name]
        last_hs6 = max((i for i, lv in enumerate(self.levels_) if "hs6" in lv), default=len(self.levels_) - 1)
        blocks = [range(0, last_hs6 + 1), range(last_hs6 + 1, len(self.levels_))]
        for number, block in enumerate(blocks):
            taken = self._choose_in_block(measure, table, block, open_rows, ref)
            open_rows &= ~taken
            if number == 0 and self.external_prices_ is not None and open_rows.any():
                found, source, label = _external_lookup(measure, open_rows, self.external_prices_)
                ok = open_rows & (found["count"] > 0)
                _take(ref, found, ok, label, source)
                open_rows &= ~ok
        return ref

    def _choose_in_block(self, measure, table, block, open_rows, ref) -> np.ndarray:
        """Fill ``ref`` for the open lines from the levels in ``block``; return the lines it filled."""
        z = self.specific_peer_z
        chosen = np.zeros(len(open_rows), dtype=bool)
        broader = None  # per line, the stats of the nearest broader qualifying group seen so far
        for index in reversed(block):  # broad to specific: a specific group must earn its place
            level = self.levels_[index]
            found = _lookup(measure.keys, open_rows, table[table["level"] == index], list(self._base_keys_ + level))
            # peers other than the line itself: the line may be one of the group's members
            ok = open_rows & (found["count"] - 1 >= self.min_group_size_)
            if broader is None or not z:
                distinct = ok
            else:
                # the same lines as the broader group: keep the specific name, it says more
                same = found["count"] == broader["count"]
                distinct = ok & (~chosen | same | _differs(found, broader, z, self.min_spread))
            _take(ref, found, distinct, _level_label(measure.keys, level, distinct), "own data")
            chosen |= distinct
            if broader is None:
                broader = {k: v.copy() for k, v in found.items()}
            else:
                for k in _STATS:
                    broader[k] = np.where(ok, found[k], broader[k])
        return chosen

    # ---- explaining ----------------------------------------------------------------------------------

    def explain(self, X) -> pd.DataFrame:
        """Per line: the measure that drove the score, its reference (median, Q1, Q3, peers, level, source),
        ratio to the median, fence distance, robust z, the estimated value moved and a sentence saying so.

        Value moved is (price - fence) x quantity (or kg): the part of the invoice beyond the outlier fence,
        a conservative figure; positive for both over- and under-invoicing, with ``direction`` saying which.
        ``peers`` is the size of the reference group; when the line was in the data the detector was fitted
        on, it is one of them (the hierarchy required ``min_group_size`` others).
        """
        X = self._validate(X, reset=False)
        compared = self._compare(X)
        names = list(compared)
        fences = np.vstack([compared[m]["fence"] for m in names])
        magnitude = np.where(_scoring_mask(names, fences), np.nan_to_num(np.abs(fences), nan=-1.0), -1.0)
        pick = magnitude.argmax(axis=0)
        n = len(X)
        rows = np.arange(n)

        def chosen(key):
            """Each line's ``key`` from the measure that drove its score."""
            stacked = np.stack([np.asarray(compared[m][key], dtype=object) for m in names])
            return stacked[pick, rows] if n else np.empty(0, dtype=object)

        out = pd.DataFrame(index=X.index if isinstance(X, pd.DataFrame) else None)
        fence = np.where(magnitude[pick, rows] >= 0, fences[pick, rows], np.nan).astype(float)
        scored = np.isfinite(fence)
        out["driver"] = np.where(scored, np.array(names, dtype=object)[pick], "")
        out["fence_distance"] = fence
        out["robust_z"] = np.array(chosen("robust_z"), dtype=float)
        log_value = np.array(chosen("log_value"), dtype=float)
        median, q1, q3 = (np.array(chosen(k), dtype=float) for k in ("median", "q1", "q3"))
        with np.errstate(invalid="ignore", over="ignore"):
            out["price"] = np.where(scored, np.exp(log_value), np.nan)
            out["reference_median"] = np.where(scored, np.exp(median), np.nan)
            out["reference_q1"] = np.where(scored, np.exp(q1), np.nan)
            out["reference_q3"] = np.where(scored, np.exp(q3), np.nan)
            out["ratio_to_median"] = out["price"] / out["reference_median"]
        out["unit"] = np.where(scored, chosen("unit"), "")
        out["peers"] = np.where(scored, np.array(chosen("count"), dtype=float), 0).astype(np.int64)
        out["level"] = np.where(scored, chosen("level"), "")
        out["source"] = np.where(scored, chosen("source"), "")
        for m in names:
            out[f"{m}_fence"] = compared[m]["fence"]
        lower, upper = self._fence_bounds(q1, q3, np.array(chosen("medcouple"), dtype=float))
        with np.errstate(invalid="ignore", over="ignore"):  # the prices at the fences, for charts and checks
            out["fence_low"] = np.where(scored, np.exp(lower), np.nan)
            out["fence_high"] = np.where(scored, np.exp(upper), np.nan)
        amount = np.array(chosen("amount"), dtype=float)
        over = scored & (fence > self.threshold)
        under = scored & (fence < -self.threshold)
        with np.errstate(invalid="ignore", over="ignore"):
            moved = np.where(over, (out["price"] - np.exp(upper)) * amount,
                             np.where(under, (np.exp(lower) - out["price"]) * amount, 0.0))
        out["direction"] = np.where(over, "over", np.where(under, "under", ""))
        out["value_moved"] = np.where(np.isfinite(moved), moved, np.nan)
        # a sentence with the figures for every line beyond the fences; the rest need no more than this
        reason = np.where(scored, "price within the fences of its peers", "not enough peers to judge the price")
        reason = reason.astype(object)
        alerted = np.flatnonzero(over | under)
        if len(alerted):
            columns = ["driver", "price", "unit", "ratio_to_median", "reference_median", "reference_q1", "reference_q3",
                       "fence_low", "fence_high", "peers", "level", "source", "fence_distance", "direction",
                       "value_moved"]
            arrays = [out[c].to_numpy(dtype=object)[alerted] for c in columns]
            reason[alerted] = [self._sentence(*values) for values in zip(*arrays)]
        out["reason"] = reason
        return out

    def _fence_bounds(self, q1, q3, medcouple):
        iqr = np.maximum(q3 - q1, self.min_spread)
        if self.skew_adjusted:
            low = np.where(medcouple >= 0, np.exp(-4 * medcouple), np.exp(-3 * medcouple))
            high = np.where(medcouple >= 0, np.exp(3 * medcouple), np.exp(4 * medcouple))
        else:
            low = high = np.ones_like(q1)
        return q1 - self.threshold * iqr * low, q3 + self.threshold * iqr * high

    def _sentence(self, driver, price, unit, ratio_to_median, reference_median, reference_q1, reference_q3, fence_low,
                  fence_high, peers, level, source, fence_distance, direction, value_moved) -> str:
        """The reason for one alerted line, with every figure an investigator needs to redo it: the price, the
        peers' median, Q1, Q3 and the fence as plain prices, the price as a multiple of the median and of the
        fence it crossed, and the fence distance said to be on log prices."""
        r = _Line(driver, price, unit, ratio_to_median, reference_median, reference_q1, reference_q3, fence_low,
                  fence_high, peers, level, source, fence_distance, direction, value_moved)
        currency = self.reporting_currency
        above = r.fence_distance > 0
        fence_name, fence_price = ("upper fence", r.fence_high) if above else ("lower fence", r.fence_low)
        # always a multiple above 1, so "8x" reads the same way both sides: price / upper, lower / price
        beyond = (f"{ratio(r.price / fence_price)} the {fence_name}" if above
                  else f"the {fence_name} is {ratio(fence_price / r.price)} the price")
        side = "above Q3" if above else "below Q1"
        if r.driver == "mirror_gap":
            # gaps sit near 1x: four digits, so the fence can be redone from Q1 and Q3
            return (f"declared value is {ratio(r.price, 4)} the exporting side's declaration of the shipment "
                    f"(with freight and insurance added), against a median gap of {ratio(r.reference_median, 4)} "
                    f"over {r.peers:,} matched peer lines ({r.level}): Q1 {ratio(r.reference_q1, 4)}, Q3 "
                    f"{ratio(r.reference_q3, 4)}, {fence_name} {ratio(fence_price, 4)}; {beyond} "
                    f"({number(abs(r.fence_distance), 2)} IQRs {side} on log gaps); about {number(r.value_moved)} "
                    f"{currency} beyond the fence")
        what = {"unit_price": "unit price", "value_per_kg": "value per kg"}.get(r.driver, r.driver)
        per = price_unit(currency, r.unit) if r.unit else ""
        lead = f"{what} {number(r.price)} {currency if r.driver == 'value_per_kg' else per}".rstrip()
        text = (f"{lead} is {ratio(r.ratio_to_median)} the median of {r.peers:,} peer lines ({r.level}; {r.source}): "
                f"Q1 {number(r.reference_q1)}, median {number(r.reference_median)}, Q3 {number(r.reference_q3)}, "
                f"{fence_name} {number(fence_price)} {per}".rstrip()
                + f"; {beyond} ({number(abs(r.fence_distance), 2)} IQRs {side} on log prices)")
        if r.direction and r.driver == "unit_price":
            text += f"; about {number(r.value_moved)} {currency} {r.direction}-invoiced beyond the fence"
        elif r.direction:
            cause = "mispriced, or the weight misdeclared" if r.driver == "value_per_kg" else "mispriced on one side"
            text += f"; about {number(r.value_moved)} {currency} beyond the fence ({cause})"
        return text


def _scoring_mask(names: list[str], fences: np.ndarray) -> np.ndarray:
    """Which measure distances count toward a line's score: value per kg only where there is no unit price."""
    mask = np.ones_like(fences, dtype=bool)
    if "value_per_kg" in names and "unit_price" in names:
        mask[names.index("value_per_kg")] = ~np.isfinite(fences[names.index("unit_price")])
    return mask


class _Line(NamedTuple):
    driver: str
    price: float
    unit: str
    ratio_to_median: float
    reference_median: float
    reference_q1: float
    reference_q3: float
    fence_low: float
    fence_high: float
    peers: int
    level: str
    source: str
    fence_distance: float
    direction: str
    value_moved: float


def _group_codes(keys: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Group code of each row, and the position of each group's first row."""
    if not columns:
        codes = np.zeros(len(keys), np.int64)
    else:
        codes = keys.groupby(columns, sort=False, dropna=False).ngroup().to_numpy(np.int64)
    if not len(codes):
        return codes, np.empty(0, np.int64)
    first = np.full(codes.max() + 1, -1, np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order  # the last write wins: the first row of each group
    return codes, first


def _differs(group: dict, broader: dict, z: float, min_spread: float) -> np.ndarray:
    """Whether each line's group differs from its broader group by more than ``z`` standard errors of
    the group's median (1.2533 sigma / sqrt(n), sigma = IQR / 1.349) or of its log IQR (1.166 / sqrt(n)),
    the large-sample errors of sample quartiles under normality, on the log-price scale."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.maximum(group["count"], 1.0)
        iqr = np.maximum(group["q3"] - group["q1"], min_spread)
        broad_iqr = np.maximum(broader["q3"] - broader["q1"], min_spread)
        median_gap = np.abs(group["median"] - broader["median"]) / (1.2533 * iqr / 1.349 / np.sqrt(n))
        spread_gap = np.abs(np.log(iqr / broad_iqr)) / (1.166 / np.sqrt(n))
    return np.nan_to_num(np.maximum(median_gap, spread_gap), nan=np.inf) > z


def _lookup(keys: pd.DataFrame, rows: np.ndarray, table: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    n = len(keys)
    found = {k: np.full(n, np.nan) for k in _STATS}
    found["count"] = np.zeros(n)
    positions = np.flatnonzero(rows)
    if not len(positions) or table.empty:
        return found
    if columns:
        wanted = keys.iloc[positions][columns].reset_index(drop=True)
        matched = wanted.merge(table[columns + _STATS], on=columns, how="left", sort=False)
    else:
        matched = pd.concat([table[_STATS]] * len(positions), ignore_index=True)
    for k in _STATS:
        found[k][positions] = matched[k].to_numpy(dtype=float, na_value=np.nan)
    found["count"] = np.nan_to_num(found["count"], nan=0.0)
    return found


def _take(ref: dict, found: dict, ok: np.ndarray, level: np.ndarray, source) -> None:
    """Copy the reference found for the lines ``ok``; ``level`` (and ``source`` unless a string) per line."""
    for k in _STATS:
        ref[k][ok] = found[k][ok]
    ref["level"][ok] = level[ok]
    ref["source"][ok] = source if isinstance(source, str) else source[ok]


def level_keys(label: str) -> dict[str, str] | None:
    """The peer keys a ``level`` label names, ``{"hs6": "090111", "origin": "CN", ...}``; {} for "all
    lines"; None for a label that is not one of ours (an external source's, say)."""
    if label == "all lines":
        return {}
    names = {text: key for key, text in _LABELS.items()}
    tokens = str(label).split()
    if not tokens or len(tokens) % 2:
        return None
    keys = {}
    for name, value in zip(tokens[::2], tokens[1::2]):
        if name not in names:
            return None
        keys[names[name]] = value
    return keys


def _level_label(keys: pd.DataFrame, level: tuple[str, ...], rows: np.ndarray) -> np.ndarray:
    """Per line, where it found its peers, with the key values: "HS6 090111 from CN to US period 2023Q2";
    written only for the lines ``rows`` (text for a million lines is not free), "" elsewhere."""
    label = np.full(len(keys), "", dtype=object)
    if not level:
        label[rows] = "all lines"
        return label
    parts = [(_LABELS.get(k, k) + " " + keys[k][rows].astype(str)).to_numpy(dtype=object) for k in level]
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part
    label[rows] = text
    return label


# ---- external reference prices -----------------------------------------------------------------------

def load_reference_prices(spec) -> pd.DataFrame:
    """An external unit-value table, checked and put on the log scale.

    Columns: ``hs_code`` (2, 4 or 6 digits), ``unit`` (canonical, KGM for prices per kg), ``median``,
    ``q1``, ``q3`` (prices in the reporting currency), optional ``n`` (observations behind the figures),
    ``origin``, ``destination`` (ISO alpha-2) and ``source`` (named in the reasons).
    """
    if isinstance(spec, pd.DataFrame):
        raw, name = spec.copy(), "external table"
    else:
        path = Path(spec)
        if not path.exists():
            raise InputFileError(f"{path}: reference price table not found")
        raw = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(
            path, dtype={"hs_code": "string", "origin": "string", "destination": "string"}, comment="#")
        name = path.name
    missing = [c for c in ("hs_code", "unit", "median", "q1", "q3") if c not in raw.columns]
    if missing:
        raise InputFileError(f"{name}: reference price table lacks column '{missing[0]}'")
    table = pd.DataFrame({
        "hs": raw["hs_code"].astype("string").str.replace(r"\D", "", regex=True),
        "unit": raw["unit"].astype("string").str.upper(),
        "origin": raw["origin"].astype("string").str.upper() if "origin" in raw else pd.NA,
        "destination": raw["destination"].astype("string").str.upper() if "destination" in raw else pd.NA,
        "source": (raw["source"].astype("string") if "source" in raw else pd.Series(name, index=raw.index)),
    })
    prices = raw[["median", "q1", "q3"]].apply(pd.to_numeric, errors="coerce")
    bad = (~np.isfinite(prices).all(axis=1)) | (prices <= 0).any(axis=1) | (prices["q1"] > prices["median"]) | (
        prices["median"] > prices["q3"]) | ~table["hs"].str.len().isin([2, 4, 6]).fillna(False)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError(f"{name}: row {row + 1}: needs a 2/4/6-digit hs_code and 0 < q1 <= median <= q3")
    table["median"], table["q1"], table["q3"] = (np.log(prices[c].to_numpy()) for c in ("median", "q1", "q3"))
    table["mad"] = (table["q3"] - table["q1"]) / 2.0  # for a normal law MAD = IQR / 2
    table["medcouple"] = 0.0
    table["count"] = pd.to_numeric(raw["n"], errors="coerce").fillna(0).to_numpy() if "n" in raw else 0.0
    return table


def _external_lookup(measure: Measure, rows: np.ndarray, table: pd.DataFrame):
    """Most specific external match per open line: HS6 before HS4 before HS2, a named corridor before none."""
    n = len(measure.log_value)
    found = {k: np.full(n, np.nan) for k in _STATS}
    found["count"] = np.zeros(n)
    source = np.full(n, "", dtype=object)
    label = np.full(n, "", dtype=object)
    remaining = rows.copy()
    keys = measure.keys
    for digits in (6, 4, 2):
        for use_origin, use_dest in ((True, True), (False, True), (True, False), (False, False)):
            subset = table[(table["hs"].str.len() == digits)
                           & (table["origin"].notna() == use_origin) & (table["destination"].notna() == use_dest)]
            positions = np.flatnonzero(remaining)
            if subset.empty or not len(positions):
                continue
            wanted = pd.DataFrame({"hs": keys["hs6"].iloc[positions].str.slice(0, digits).to_numpy(),
                                   "unit": keys["unit"].iloc[positions].to_numpy()})
            on = ["hs", "unit"]
            if use_origin:
                wanted["origin"] = keys["origin"].iloc[positions].to_numpy()
                on.append("origin")
            if use_dest:
                wanted["destination"] = keys["destination"].iloc[positions].to_numpy()
                on.append("destination")
            matched = wanted.merge(subset.drop_duplicates(on), on=on, how="left", sort=False)
            hit = matched["median"].notna().to_numpy()
            at = positions[hit]
            for k in _STATS:
                found[k][at] = matched[k].to_numpy(dtype=float, na_value=np.nan)[hit]
            found["count"][at] = np.maximum(found["count"][at], 1)  # "no n given" still counts as a reference
            source[at] = "external: " + matched["source"][hit].astype(str).to_numpy()
            corridor = ("" if not use_origin else " from " + matched["origin"][hit].astype(str)) + (
                "" if not use_dest else " to " + matched["destination"][hit].astype(str))
            label[at] = (f"HS{digits} " + matched["hs"][hit].astype(str) + corridor).to_numpy()
            remaining[at] = False
    return found, source, label
