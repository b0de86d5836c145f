"""Learning from labels: a gradient-boosted ranker over tbml's evidence and the file's own coded columns,
fused with the unsupervised risk so that what no label has shown is still seen.

    ranker = SupervisedRanker(seed=0).fit(items, labelled)   # items scored by TBMLModel, labels in is_laundering
    p = ranker.predict(items)                                # calibrated probability of laundering
    risk = fused(p, unsupervised_risk, ranker.alpha_)         # see below

**What it learns from.** Every number tbml already computes for an item (how far its price lies beyond its
fences, its payment, entity and ring features, the isolation forest's percentile, each red flag as 0/1, the
unsupervised risk) plus the history of its coded columns: for the importer, exporter, declarant, customs
office, payer, payee, goods (HS6 and chapter) and countries, how many earlier labelled lines it had and how
many of them were laundering ("declarant DCL00012: 4 of 6 earlier labelled lines were laundering"). Those
counts use only labels dated strictly before the line (ordered target statistics, as CatBoost does), in
training and in scoring alike, so a line never learns from its own label and training sees the same kind
of figure scoring will.

**Which learner, and why LightGBM.** Gradient-boosted trees: the strongest plain learner on tabular
evidence, and indifferent to the scale of each feature. LightGBM over scikit-learn's
HistGradientBoostingClassifier for two reasons: ``pred_contrib=True`` gives each alert's exact per-feature
contributions (TreeSHAP), which the reasons are written from; and a trained booster is a plain text file,
so a saved model stays free of pickles like the rest of tbml's models.

**Calibration.** The booster is first trained on the earlier 75% of the labelled lines (by date) and
stopped early on the later 25%; an isotonic calibration learned on those later lines maps its output to a
probability, and the same held-out lines give each risk band its measured precision. The booster is then
refitted on every labelled line with the number of rounds found, and keeps that calibration.

**Fusion (semi-supervised).** risk = 100 x (1 - (1 - p) x (1 - alpha x u)), a noisy-OR of the supervised
probability p and the unsupervised risk u (0-1) weighted by alpha. alpha is the value in 0, 0.1, ..., 1
whose fused ranking has the best average precision on the held-out later lines, but never below
``alpha_floor`` (0.2 by default): the labels can only teach what investigators have seen, and a scheme none
of them has met (a new typology) still needs the unsupervised evidence to reach the alerts.

**Partial labels.** An item nobody inspected is unlabelled, not clean. Where only some items carry a label
(investigators' decisions on alerts, inspections chosen by risk), the labelled sample leans to what tbml
already alerts on, and a ranker learned from it alone extrapolates badly to everything else (measured: on a
generated year, labels on the first half's top 5% plus exploration, fused PR-AUC 0.47 on the second half
against 0.51 for the unsupervised risk). So an unlabelled item joins the training as clean with the weight
1 - u, u its unsupervised risk: an item with no evidence against it is very probably clean, one the
unsupervised evidence suspects counts for little. Its label history stays empty: the counts quoted in the
reasons are labelled lines only, and the held-out figures (calibration, risk bands, alpha) are measured
on labelled lines. Exploration (``tbml.budget``) spends part of each alert budget outside the labelled
sample, so the next labels teach more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tbml.errors import TBMLError
from tbml.wording import feature_phrase, number, rule_name

# coded columns whose history is learned, and how an investigator names each
CODED: dict[str, str] = {
    "importer_id": "importer", "exporter_id": "exporter", "declarant_id": "declarant",
    "customs_office": "customs office", "payer_id": "payer", "payee_id": "payee", "hs6": "goods HS6",
    "hs2": "HS chapter", "origin_country": "origin", "exporter_country": "exporting country",
    "importer_country": "importing country",
}
# coded columns whose novelty makes an item worth exploring
NOVELTY = ("importer_id", "exporter_id", "declarant_id", "hs6")
# numbers on items that are not evidence: labels, tbml's own outputs, row positions
NOT_EVIDENCE = frozenset({"is_laundering", "strength", "rank", "risk", "risk_percentile", "supervised_probability",
                          "alert", "source_row", "forest_score"})
RESTATED = frozenset({"risk_unsupervised", "forest_percentile", "forest_score"})
SMOOTHING = 5.0  # pseudo-lines at the overall rate behind each coded value's rate: 1 of 1 is not 100%
ALPHAS = np.round(np.linspace(0.0, 1.0, 11), 2)
BANDS = (0, 20, 40, 60, 80, 101)
PARAMS = {"objective": "binary", "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 40,
          "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0,
          "metric": "average_precision", "verbose": -1, "deterministic": True, "force_row_wise": True, "num_threads": 2}


def labelled_mask(items: pd.DataFrame) -> np.ndarray:
    """Items with a label (``is_laundering`` true or false); blank is not inspected."""
    if "is_laundering" not in items:
        return np.zeros(len(items), dtype=bool)
    return items["is_laundering"].notna().to_numpy()


def labels_of(items: pd.DataFrame) -> np.ndarray:
    return items["is_laundering"].astype("boolean").fillna(False).to_numpy(dtype=bool)


@dataclass
class History:
    """Per coded column, the labelled lines seen up to each date: counts for ordered target statistics."""
    tables: dict[str, pd.DataFrame]  # column -> key, date, n (cumulative), pos (cumulative); sorted by date
    prior: float

    @classmethod
    def learn(cls, items: pd.DataFrame, y: np.ndarray) -> History:
        tables = {}
        for col in CODED:
            if col not in items or not items[col].notna().any():
                continue
            frame = pd.DataFrame({"key": items[col].astype("string").to_numpy(), "date": _dates(items),
                                  "n": 1, "pos": y.astype(int)}).dropna(subset=["key", "date"])
            daily = frame.groupby(["key", "date"], sort=True)[["n", "pos"]].sum()
            daily[["n", "pos"]] = daily.groupby(level="key")[["n", "pos"]].cumsum()
            tables[col] = daily.reset_index().sort_values("date", kind="stable").reset_index(drop=True)
        return cls(tables, float(y.mean()) if len(y) else 0.0)

    def lookup(self, items: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per coded column: (labelled lines, of which laundering) with that value dated before each item."""
        out = {}
        dates = _dates(items)
        order = np.argsort(dates.to_numpy(dtype="datetime64[ns]"), kind="stable")
        for col, table in self.tables.items():
            n, pos = np.zeros(len(items)), np.zeros(len(items))
            if col in items:
                # a blank value has no history: "\x00" is no key of the table
                keys = items[col].astype("string").fillna("\x00").astype(str).to_numpy(dtype=object)
                left = pd.DataFrame({"key": keys[order], "date": dates.to_numpy()[order], "at": order})
                left = left.dropna(subset=["date"]).astype({"key": str})
                found = pd.merge_asof(left, table.astype({"key": str}), on="date",
                                      by="key", allow_exact_matches=False, direction="backward")
                at = found["at"].to_numpy()
                n[at] = found["n"].fillna(0).to_numpy(dtype=float)
                pos[at] = found["pos"].fillna(0).to_numpy(dtype=float)
            out[col] = (n, pos)
        return out


def _dates(items: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(items["date"], errors="coerce").astype("datetime64[ns]")


class SupervisedRanker:
    """Gradient-boosted ranker over tbml's evidence and coded columns' label history (see the module)."""

    def __init__(self, seed: int = 0, alpha_floor: float = 0.2, label_source: str = "labels",
                 unlabelled: str = "evidence"):
        self.seed = seed
        self.alpha_floor = alpha_floor
        self.label_source = label_source
        self.unlabelled = unlabelled  # "evidence": unlabelled lines count as clean by 1 - unsupervised risk

    # ---- features ---------------------------------------------------------------------------------------

    def _matrix(self, items: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        columns = {}
        for name in self.evidence_:
            columns[name] = (pd.to_numeric(items[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                             if name in items else np.full(len(items), np.nan))
        hits = items["rules_hit"].fillna("").astype(str) if "rules_hit" in items else pd.Series("", index=items.index)
        for rule in self.rules_:
            columns[f"rule:{rule}"] = hits.str.contains(rf"(?:^|,){rule}(?:,|$)", regex=True).to_numpy(dtype=float)
        columns["is_transfer"] = (items["item"] == "transfer").to_numpy(dtype=float)
        history = self.history_.lookup(items)
        for col, (n, pos) in history.items():
            columns[f"seen:{col}"] = n
            columns[f"rate:{col}"] = (pos + SMOOTHING * self.history_.prior) / (n + SMOOTHING)
        return pd.DataFrame(columns, index=items.index)[self.features_], history

    # ---- fit ----------------------------------------------------------------------------------------------

    def fit(self, items: pd.DataFrame, labelled: np.ndarray | None = None) -> SupervisedRanker:
        """Learn from ``items`` (scored by TBMLModel, with ``is_laundering``) where ``labelled`` is True
        (default: every item with a label)."""
        import lightgbm as lgb

        labelled = labelled_mask(items) if labelled is None else np.asarray(labelled, dtype=bool)
        y_all = labels_of(items) & labelled
        if y_all.sum() < 5 or (labelled & ~y_all).sum() < 5:
            raise TBMLError(f"too few labels to learn from: {int(y_all.sum())} laundering and "
                            f"{int((labelled & ~y_all).sum())} clean labelled lines; give at least 5 of each")
        # unlabelled lines join as clean in proportion to how little evidence they carry (see the module)
        use = labelled | (self.unlabelled == "evidence")
        u = np.nan_to_num(pd.to_numeric(items.get("risk_unsupervised", pd.Series(0.0, index=items.index)),
                                        errors="coerce").to_numpy(dtype=float)) / 100.0
        weight_all = np.where(labelled, 1.0, np.clip(1.0 - u, 0.0, 1.0))
        train = items[use]
        order = np.argsort(_dates(train).to_numpy(dtype="datetime64[ns]"), kind="stable")
        train = train.iloc[order]
        y, w, known = y_all[use][order], weight_all[use][order], labelled[use][order]
        self.evidence_ = [c for c in _numeric_columns(items) if c not in NOT_EVIDENCE]
        rules = sorted({r for text in train.get("rules_hit", pd.Series(dtype=str)).fillna("") for r in str(text).split(",") if r})
        self.rules_ = rules
        self.history_ = History.learn(train[known], y[known])  # label history: labelled lines only
        self.features_ = (list(self.evidence_) + [f"rule:{r}" for r in rules] + ["is_transfer"]
                          + [f"{k}:{c}" for c in self.history_.tables for k in ("seen", "rate")])
        X, _ = self._matrix(train)
        cut = int(len(train) * 0.75)
        held = np.arange(len(train)) >= cut
        # the held-out later quarter needs labelled lines of both classes to stop on and calibrate with
        if y[held & known].sum() < 3 or (~y[held & known]).sum() < 3:
            cut = len(train)
        params = dict(PARAMS, seed=self.seed)
        if cut < len(train):
            early = lgb.train(params, lgb.Dataset(X.iloc[:cut].to_numpy(), y[:cut], weight=w[:cut]),
                              num_boost_round=600,
                              valid_sets=[lgb.Dataset(X.iloc[cut:].to_numpy(), y[cut:], weight=w[cut:])],
                              callbacks=[lgb.early_stopping(50, verbose=False)])
            self.rounds_ = max(int(early.best_iteration or 100), 20)
            held_raw = early.predict(X.iloc[cut:].to_numpy(), raw_score=True)
            self._calibrate(held_raw, y[cut:], w[cut:])
            mine = known[cut:]  # figures an investigator can trust: on labelled lines only
            held_p = self.calibrated(held_raw)[mine]
            held_u = train["risk_unsupervised"].to_numpy(dtype=float)[cut:][mine] / 100.0
            self.alpha_ = self._choose_alpha(held_p, held_u, y[cut:][mine])
            self.bands_ = _band_precision(100 * fused(held_p, held_u, self.alpha_), y[cut:][mine])
            self.held_out_ = {"lines": int(mine.sum()), "laundering": int(y[cut:][mine].sum())}
        else:
            self.rounds_ = 200
            self.calibration_ = None
            self.alpha_ = max(0.5, self.alpha_floor)
            self.bands_ = []
            self.held_out_ = {"lines": 0, "laundering": 0}
        self.booster_ = lgb.train(params, lgb.Dataset(X.to_numpy(), y, weight=w), num_boost_round=self.rounds_)
        self.trained_on_ = {"lines": int(known.sum()), "laundering": int(y.sum()), "source": self.label_source,
                            "unlabelled_as_probably_clean": int((~known).sum())}
        self.typical_ = {c: float(np.nanmedian(X[c].to_numpy(dtype=float))) if X[c].notna().any() else 0.0
                         for c in self.evidence_}
        self.rule_rates_ = {r: _rate(X[f"rule:{r}"].to_numpy()[known] > 0, y[known]) for r in rules}
        return self

    def _calibrate(self, raw: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> None:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y.astype(float),
                                                                                  sample_weight=weight)
        self.calibration_ = (np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_, dtype=float))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration_ is None or len(self.calibration_[0]) < 2:
            return 1.0 / (1.0 + np.exp(-raw))
        x, p = self.calibration_
        return np.interp(raw, x, p)

    def _choose_alpha(self, p: np.ndarray, u: np.ndarray, y: np.ndarray) -> float:
        from sklearn.metrics import average_precision_score

        scores = [average_precision_score(y, fused(p, u, a)) for a in ALPHAS]
        best = float(ALPHAS[int(np.argmax(scores))])  # the smallest alpha of the best, as argmax takes the first
        return max(best, self.alpha_floor)

    # ---- score --------------------------------------------------------------------------------------------

    def predict(self, items: pd.DataFrame) -> np.ndarray:
        X, _ = self._matrix(items)
        return self.calibrated(self.booster_.predict(X.to_numpy(), raw_score=True))

    def reasons(self, items: pd.DataFrame, rows: np.ndarray, p: np.ndarray, top: int = 2,
                currency: str = "USD") -> list[str]:
        """For the items at positions ``rows``: what the labels taught about them, strongest contributions
        first, in words with the figures behind each ("declarant DCL00012: 4 of 6 earlier labelled lines
        were laundering")."""
        if not len(rows):
            return []
        part = items.iloc[rows]
        X, history = self._matrix(part)
        contrib = self.booster_.predict(X.to_numpy(), pred_contrib=True)[:, :-1]
        by_source: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.features_):
            source = name.split(":", 1)[1] if name.startswith(("seen:", "rate:")) else name
            by_source[source] = by_source.get(source, 0.0) + contrib[:, j]
        # the unsupervised risk and the forest's percentile restate the reasons already written beside these
        names = [n for n in by_source if n not in RESTATED]
        matrix = np.column_stack([by_source[n] for n in names])
        out = []
        lines, caught = self.trained_on_["lines"], self.trained_on_["laundering"]
        for i in range(len(rows)):
            best = [names[j] for j in np.argsort(-matrix[i], kind="stable")[:top] if matrix[i, j] > 0]
            said = [self._phrase(name, part.iloc[i], X.iloc[i], history, i, currency) for name in best]
            head = (f"learned from {number(lines)} labelled lines ({number(caught)} laundering): "
                    f"probability {p[rows[i]]:.2f}")
            out.append(head + (": " + "; ".join(s for s in said if s) if said else ""))
        return out

    def _phrase(self, name, item, x, history, i, currency) -> str:
        if name in CODED:
            n, pos = history[name][0][i], history[name][1][i]
            value = item.get(name)
            who = f"{CODED[name]} {value}" if value is not None and not pd.isna(value) else CODED[name]
            if n == 0:
                return f"{who}: no earlier labelled line"
            return f"{who}: {number(pos)} of {number(n)} earlier labelled lines were laundering"
        if name.startswith("rule:"):
            rule = name[5:]
            hit, rate = x[name] > 0, self.rule_rates_.get(rule)
            if not hit:
                return f"no red flag {rule_name(rule)}"
            return f"red flag {rule_name(rule)}" + (f" ({rate} in the labels)" if rate else "")
        if name == "is_transfer":
            return "a payment with no invoice" if x[name] > 0 else ""
        value = x[name]
        if not np.isfinite(value):
            return ""
        return feature_phrase(name, float(value), self.typical_.get(name, 0.0), currency)

    def exploration(self, items: pd.DataFrame) -> np.ndarray:
        """How much reviewing each item would teach: the ranker's uncertainty (1 at probability 0.5) and how
        new the item is (the share of its importer, exporter, declarant and goods with no labelled line),
        weighted towards items with more unsupervised evidence."""
        unseen = self._unseen(items)
        p = items["supervised_probability"].to_numpy(dtype=float)
        u = np.nan_to_num(items["risk_unsupervised"].to_numpy(dtype=float)) / 100.0
        return (0.5 * (1.0 - np.abs(2.0 * p - 1.0)) + 0.5 * unseen.mean(axis=1)) * (0.5 + 0.5 * u)

    def exploration_reasons(self, items: pd.DataFrame) -> list[str]:
        unseen = self._unseen(items)
        out = []
        for i in range(len(items)):
            row = items.iloc[i]
            new = [f"{CODED[c]} {row[c]}" for c, flag in zip(NOVELTY, unseen[i]) if flag and c in items
                   and not pd.isna(row[c])]
            out.append(f"explored: the labels say little about it (probability {row['supervised_probability']:.2f})"
                       + (f"; no labelled line of its {', '.join(new)}" if new else ""))
        return out

    def _unseen(self, items: pd.DataFrame) -> np.ndarray:
        """Per item and NOVELTY column: 1 where that value has no labelled line before the item."""
        history = self.history_.lookup(items)
        columns = [(history[c][0] == 0) & items[c].notna().to_numpy() if c in history and c in items
                   else np.zeros(len(items), dtype=bool) for c in NOVELTY]
        return np.column_stack(columns).astype(float)

    # ---- persistence --------------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "booster.txt").write_text(self.booster_.model_to_string(), encoding="utf-8")
        frames = []
        for col, table in self.history_.tables.items():
            frames.append(table.assign(column=col))
        history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {"key": pd.Series(dtype="string"), "date": pd.Series(dtype="datetime64[ns]"), "n": [], "pos": [], "column": []})
        history.to_parquet(folder / "history.parquet", index=False)
        state = {"seed": self.seed, "alpha_floor": self.alpha_floor, "label_source": self.label_source,
                 "evidence": self.evidence_, "rules": self.rules_, "features": self.features_,
                 "rounds": self.rounds_, "alpha": self.alpha_, "prior": self.history_.prior,
                 "calibration": None if self.calibration_ is None else [a.tolist() for a in self.calibration_],
                 "bands": self.bands_, "held_out": self.held_out_, "trained_on": self.trained_on_,
                 "typical": self.typical_, "rule_rates": self.rule_rates_}
        (folder / "supervised.json").write_text(json.dumps(state, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> SupervisedRanker:
        import lightgbm as lgb

        folder = Path(folder)
        where = folder / "supervised.json"
        try:
            state = json.loads(where.read_text(encoding="utf-8"))
            ranker = cls(int(state["seed"]), float(state["alpha_floor"]), str(state["label_source"]))
            ranker.evidence_, ranker.rules_ = list(state["evidence"]), list(state["rules"])
            ranker.features_, ranker.rounds_ = list(state["features"]), int(state["rounds"])
            ranker.alpha_ = float(state["alpha"])
            cal = state["calibration"]
            ranker.calibration_ = None if cal is None else (np.asarray(cal[0], float), np.asarray(cal[1], float))
            ranker.bands_, ranker.held_out_ = list(state["bands"]), dict(state["held_out"])
            ranker.trained_on_, ranker.typical_ = dict(state["trained_on"]), dict(state["typical"])
            ranker.rule_rates_ = dict(state["rule_rates"])
            history = pd.read_parquet(folder / "history.parquet")
            tables = {col: part.drop(columns="column").reset_index(drop=True)
                      for col, part in history.groupby("column", sort=False)}
            ranker.history_ = History(tables, float(state["prior"]))
            ranker.booster_ = lgb.Booster(model_str=(folder / "booster.txt").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise TBMLError(f"{where}: not a supervised ranker tbml can read ({exc})") from None
        if ranker.booster_.num_feature() != len(ranker.features_):
            raise TBMLError(f"{folder / 'booster.txt'}: the booster reads {ranker.booster_.num_feature()} features, "
                            f"supervised.json lists {len(ranker.features_)}")
        return ranker


def fused(p: np.ndarray, u: np.ndarray, alpha: float) -> np.ndarray:
    """Noisy-OR of the supervised probability and alpha x the unsupervised risk (both 0-1)."""
    return 1.0 - (1.0 - np.clip(p, 0, 1)) * (1.0 - alpha * np.clip(np.nan_to_num(u), 0, 1))


def _numeric_columns(items: pd.DataFrame) -> list[str]:
    """Every numeric or true/false column of ``items`` holding a value somewhere: tbml's evidence."""
    out = []
    for name in items.columns:
        column = items[name]
        if (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)) and column.notna().any():
            out.append(name)
    return out


def _rate(mask: np.ndarray, y: np.ndarray) -> str:
    n = int(mask.sum())
    return f"{int(y[mask].sum())} of {n} labelled lines with it were laundering" if n else ""


def _band_precision(risk: np.ndarray, y: np.ndarray) -> list[dict]:
    """Per risk band, how many held-out labelled lines fell in it and the share that were laundering."""
    out = []
    for low, high in zip(BANDS[:-1], BANDS[1:]):
        inside = (risk >= low) & (risk < high)
        if inside.any():
            out.append({"band": f"{low}-{min(high, 100)}", "lines": int(inside.sum()),
                        "precision": round(float(y[inside].mean()), 3)})
    return out
