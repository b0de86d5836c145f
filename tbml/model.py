"""The fitted chain: price references, weight references, isolation forest, rules and fusion in one object.

    model = TBMLModel(config).fit(invoices, transfers)      # normalised frames from tbml.ingest
    scored = model.score(invoices, transfers)               # one row per item, ranked by risk

Items are invoice lines and the transfers that match no invoice in the file (a payment for a shipment
that is not there is itself the finding); a transfer that settles an invoice speaks through that invoice's
payment features. Fitting learns only from the data given to ``fit``; scoring uses what was learned, plus
the scored file's own links between its invoices and transfers.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tbml import drift
from tbml.config import Config
from tbml.budget import choose, temper
from tbml.detectors.forest import ForestDetector
from tbml.detectors.fusion import (
    forest_component, forest_reasons, fuse, money_component, money_reasons, price_component, ranked_reasons)
from tbml.detectors.price import PriceDeviationDetector
from tbml.detectors.rules import evaluate_rules, load_rules, render
from tbml.errors import ConfigError
from tbml.features.entity import entity_features
from tbml.features.mirror import counterpart_exports, has_both_sides, mirror_gaps
from tbml.features.network import cycle_features
from tbml.features.pricing import kg_per_unit_deviation, kg_per_unit_table
from tbml.features.reconciliation import (
    LinkRule, PaymentRule, invoice_payment_features, link_transfers, linked_payments, shipment_features,
    transfer_features)
from tbml.defaults import resolve
from tbml.io import read_yaml
from tbml.mapping import KEPT_PREFIX

INVOICE_CONTEXT = [
    "invoice_id", "source_row", "date", "importer_id", "exporter_id", "exporter_country", "importer_country",
    "origin_country", "hs_code", "hs6", "hs2", "goods_description", "quantity", "quantity_unit", "gross_weight_kg",
    "value", "currency", "reporting_value", "shipment_ref", "declaration_side", "invoice_number", "net_weight_kg",
    "weight_basis", "is_laundering", "typology",
    "file_sha256",  # with a case store: the file a row came from (rows are keyed by file and source row)
]
TRANSFER_CONTEXT = [
    "transfer_id", "source_row", "date", "payer_id", "payer_country", "payee_id", "payee_country", "amount",
    "currency", "reporting_amount", "invoice_ref", "rejected_invoice", "channel", "is_laundering", "typology",
    "file_sha256",
]
PRICE_COLUMNS = ["driver", "fence_distance", "robust_z", "price", "unit", "reference_median", "reference_q1",
                 "reference_q3", "fence_low", "fence_high", "ratio_to_median", "peers", "level", "source", "direction",
                 "value_moved"]


# Fewer invoice lines than this and the file cannot judge itself: the price detector needs at least 5 peers
# besides the line (min_group_size "auto" is never below 5), and the forest's evidence starts at its 95th
# percentile, which on fewer than 20 lines is always the strangest line, however ordinary. Below it, only
# the red-flag rules (which need no peers) and external reference prices speak.
MIN_LINES_TO_JUDGE = 20


@dataclass
class Scored:
    items: pd.DataFrame  # every invoice line and unmatched transfer, ranked by risk
    skipped_rules: list[str]
    note: str = ""  # what could not be judged, in words for the console and the manifest
    # evidence that fired on too large a share of the items to keep its weight: name -> share, factor
    tempered: dict = field(default_factory=dict)
    # every transfer with the invoice it settles (``tbml.features.reconciliation.linked_payments``)
    payments: pd.DataFrame | None = None

    def alerts(self, threshold: float | None = None) -> pd.DataFrame:
        """The items chosen as alerts (``alert``: by the budget, see ``tbml.budget``), or with ``threshold``
        those at or above that risk."""
        if threshold is None and "alert" in self.items:
            return self.items[self.items["alert"].to_numpy(dtype=bool)]
        return self.items[self.items["risk"] >= (threshold if threshold is not None else 30.0)]


class TBMLModel:
    def __init__(self, config: Config | None = None):
        self.config = config or Config()

    # ---- fit ---------------------------------------------------------------------------------------

    def fit(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None) -> TBMLModel:
        self._fit(invoices, transfers, self._links(invoices, transfers))
        return self

    def fit_score(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None) -> Scored:
        """``fit`` then ``score`` on the same files, building every feature and forest score once."""
        links = self._links(invoices, transfers)
        items, strangeness = self._fit(invoices, transfers, links)
        scored = self._rank(items, self._transfer_items(transfers, links), strangeness,
                            n_transfers=len(transfers) if transfers is not None else 0)
        scored.payments = linked_payments(invoices, transfers, links[0]) if links is not None else None
        return scored

    def _fit(self, invoices, transfers, links) -> tuple[pd.DataFrame, np.ndarray]:
        """Fit every part; return the fitted lines' items and their forest anomaly scores."""
        cfg = self.config
        if len(invoices) == 0:
            raise ValueError("cannot fit on 0 invoice lines")
        self.fitted_lines_ = len(invoices)
        self.rules_ = load_rules(cfg.reconciliation.rules)
        self.price_ = PriceDeviationDetector(reporting_currency=cfg.ingest.reporting_currency,
                                             **cfg.pricing.detector_params()).fit(invoices)
        self.kg_per_unit_ = kg_per_unit_table(invoices)
        self.typical_value_ = float(np.nanmedian(invoices["reporting_value"].to_numpy(dtype=float)))
        self.drift_reference_ = drift.reference(invoices)
        items = self._invoice_items(invoices, transfers, links)
        features = [f for f in cfg.forest.features if f in items.columns]
        self.forest_ = ForestDetector(features=features, n_estimators=cfg.forest.n_estimators,
                                      max_samples=min(cfg.forest.max_samples, len(items)),
                                      contamination=cfg.forest.contamination,
                                      random_state=cfg.forest.random_state).fit(items)
        # the fitted lines' anomaly scores, as quantiles: a scored line's percentile is read off them
        strangeness = -self.forest_.score_samples(items)
        self.forest_quantiles_ = np.quantile(strangeness, np.linspace(0, 1, 1001))
        return items, strangeness

    def learn_labels(self, items: pd.DataFrame, labelled=None, label_source: str = "labels",
                     unlabelled: str = "evidence") -> TBMLModel:
        """Learn a supervised ranker (``tbml.supervised``) from ``items`` scored by this model, where
        labelled (default: every item whose ``is_laundering`` is not blank); later scores fuse it in."""
        from tbml.supervised import SupervisedRanker

        self.supervised_ = None  # the ranker learns from the unsupervised evidence alone
        self.supervised_ = SupervisedRanker(seed=self.config.forest.random_state,
                                            alpha_floor=self.config.fusion.unsupervised_floor,
                                            label_source=label_source, unlabelled=unlabelled).fit(items, labelled)
        return self

    def fit_supervised(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None,
                       label_source: str = "labels", unlabelled: str = "evidence") -> TBMLModel:
        """Fit the chain on the files, then a supervised ranker on their labelled items, each item scored by
        a chain that did not see it (``out_of_sample_items``): the ranker learns how the evidence looks
        on new files, which is where it will be used. (Measured on a generated year, labels on the first
        half, scored on the second: PR-AUC of the fused risk 0.56 when the ranker learned from in-sample
        items, 0.70 from out-of-sample ones; the unsupervised risk alone 0.49.)"""
        self.fit(invoices, transfers)
        return self.learn_labels(self.out_of_sample_items(invoices, transfers), label_source=label_source,
                                 unlabelled=unlabelled)

    def out_of_sample_items(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None,
                            folds: int = 2) -> pd.DataFrame:
        """Every item scored the way a new file will be: the lines are cut into ``folds`` periods by date and
        each period is scored by a chain fitted on the others. A ranker trained on these sees the evidence
        as it looks on lines the chain never fitted (prices judged against other periods' peers, the
        forest's percentile among other lines), as it will when scoring; in-sample items flatter it."""
        dates = invoices["date"].to_numpy(dtype="datetime64[ns]")
        cuts = np.quantile(dates.astype("int64"), np.linspace(0, 1, folds + 1)[1:-1]).astype("datetime64[ns]")
        period = np.searchsorted(cuts, dates, side="right")
        t_period = (np.searchsorted(cuts, transfers["date"].to_numpy(dtype="datetime64[ns]"), side="right")
                    if transfers is not None else None)
        parts = []
        for k in range(folds):
            mine, rest = period == k, period != k
            if mine.sum() < MIN_LINES_TO_JUDGE or rest.sum() < MIN_LINES_TO_JUDGE:
                return self.fit_score(invoices, transfers).items  # too few lines to cut: in-sample it is
            chain = TBMLModel(dataclasses.replace(self.config, fusion=dataclasses.replace(self.config.fusion,
                                                                                          budget="auto")))
            chain.fit(invoices[rest], transfers[t_period != k] if transfers is not None else None)
            parts.append(chain.score(invoices[mine], transfers[t_period == k] if transfers is not None else None).items)
        return pd.concat(parts, ignore_index=True)

    def drift(self, scored: Scored) -> dict:
        """How far the invoices behind ``scored`` moved from the training data (see ``tbml.drift``)."""
        invoices = scored.items[scored.items["item"] == "invoice"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log(invoices["ratio_to_median"].to_numpy(dtype=float))
        return drift.measure(self.drift_reference_, invoices, ratio)

    def save(self, folder) -> None:
        """Write the fitted chain to ``folder`` (see ``tbml.persist``: Parquet, JSON, YAML; no pickle)."""
        from tbml.persist import save_model
        save_model(self, folder)

    @classmethod
    def load(cls, folder) -> TBMLModel:
        from tbml.persist import load_model
        return load_model(folder)

    # ---- score -------------------------------------------------------------------------------------

    def score(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None) -> Scored:
        """Every invoice line and unmatched transfer, ranked by risk, with reasons."""
        links = self._links(invoices, transfers)
        scored = self._rank(self._invoice_items(invoices, transfers, links), self._transfer_items(transfers, links),
                            n_transfers=len(transfers) if transfers is not None else 0)
        scored.payments = linked_payments(invoices, transfers, links[0]) if links is not None else None
        return scored

    def _links(self, invoices, transfers):
        if not hasattr(self, "high_risk_"):
            self.high_risk_ = load_high_risk(self.config.reconciliation.high_risk_jurisdictions)
        return self._transfer_links(invoices, transfers) if transfers is not None and len(transfers) else None

    def _rank(self, inv_items: pd.DataFrame, tr_items: pd.DataFrame, strangeness=None, n_transfers: int = 0) -> Scored:
        cfg = self.config
        inv_items = inv_items.copy()
        if strangeness is None:
            strangeness = -self.forest_.score_samples(inv_items)
        percentile = np.searchsorted(self.forest_quantiles_, strangeness, side="right") / len(self.forest_quantiles_)
        inv_items["forest_score"] = strangeness
        inv_items["forest_percentile"] = percentile
        # words only for the lines the forest's evidence counts for
        inv_items["forest_detail"] = self.forest_.describe(inv_items, rows=percentile > cfg.fusion.forest_from_percentile,
                                                           currency=cfg.ingest.reporting_currency)
        items = pd.concat([inv_items, tr_items], ignore_index=True, sort=False)
        context = {"threshold": cfg.reconciliation.reporting_threshold, "window_days": cfg.reconciliation.structuring_window_days,
                   "reporting_currency": cfg.ingest.reporting_currency}
        for flag in ("linked", "ref_unknown", "ref_rejected", "third_party_payer", "third_party_payee", "payer_outside_corridor",
                     "payee_outside_corridor", "high_risk_country", "cash_like", "round_trip", "new_relationship",
                     "payee_is_trader"):
            if flag in items:
                items[flag] = items[flag].fillna(False).astype(bool)
        hits, skipped = evaluate_rules(items, self.rules_, context)

        components, texts, typologies = {}, {}, {}
        is_invoice = (items["item"] == "invoice").to_numpy()
        # a model loaded from disk was trained on enough lines (tbml.api.train_files refuses fewer)
        few = getattr(self, "fitted_lines_", MIN_LINES_TO_JUDGE) < MIN_LINES_TO_JUDGE
        note, priced = "", is_invoice
        if few:  # peers and profiles of the file itself say nothing; external reference prices still do
            source = items["source"].fillna("").astype(str) if "source" in items else pd.Series("", index=items.index)
            judged = is_invoice & source.str.startswith("external").to_numpy()
            note = (f"too few lines to judge prices and profiles ({self.fitted_lines_} invoice line(s), fewer than "
                    f"{MIN_LINES_TO_JUDGE}); only red-flag rules" + (" and external reference prices" if judged.any()
                                                                     else "") + " were applied")
            priced = judged
        components["price"] = np.where(priced, price_component(items["fence_distance"].to_numpy(dtype=float),
                                                                  self.price_.threshold, cfg.fusion), 0.0)
        texts["price"] = items["price_reason"].fillna("")
        typologies["price"] = _price_typology(items)
        components["money"] = np.where(priced, money_component(items["value_moved"].to_numpy(dtype=float),
                                                                  self.typical_value_, cfg.fusion), 0.0)
        texts["money"] = money_reasons(components["money"], items["value_moved"], self.typical_value_,
                                       cfg.ingest.reporting_currency)
        typologies["money"] = typologies["price"]
        components["forest"] = np.where(is_invoice & ~few, forest_component(items["forest_percentile"].to_numpy(dtype=float),
                                                                    cfg.fusion), 0.0)
        texts["forest"] = forest_reasons(components["forest"], items["forest_percentile"], items["forest_detail"])
        typologies["forest"] = pd.Series("unusual_profile", index=items.index)
        weight = {"high": cfg.fusion.high, "medium": cfg.fusion.medium, "low": cfg.fusion.low}
        any_hit = np.flatnonzero(hits.to_numpy().any(axis=1)) if len(hits.columns) else np.empty(0, int)
        # only the rows a rule speaks of, and only the columns its sentences name
        fields = [c for c in _template_fields(self.rules_) if c in items.columns]
        records = dict(zip(any_hit, items.iloc[any_hit][fields].to_dict("records")))
        for rule in self.rules_:
            if rule.name not in hits:
                continue
            hit = hits[rule.name].to_numpy()
            components[rule.name] = np.where(hit, weight[rule.severity], 0.0)
            text = pd.Series("", index=items.index, dtype=object)
            rows = np.flatnonzero(hit)
            text.iloc[rows] = [render(rule, records[i], context) for i in rows]
            texts[rule.name] = text
            typologies[rule.name] = pd.Series(rule.typology, index=items.index)
        frame = pd.DataFrame(components, index=items.index)
        # a share of the payments, not of the unmatched ones alone: every unmatched payment is an item
        frame, tempered = temper(frame, items["item"].to_numpy(), cfg.fusion.common_evidence_share,
                                 totals={"transfer": max(n_transfers, int(len(tr_items)))})
        unsupervised = fuse(frame)
        items["risk_unsupervised"] = np.round(unsupervised, 2)
        ranker = getattr(self, "supervised_", None)
        if ranker is not None:
            from tbml.supervised import fused

            items["supervised_probability"] = np.round(ranker.predict(items), 4)
            items["risk"] = np.round(100 * fused(items["supervised_probability"].to_numpy(), unsupervised / 100,
                                                 ranker.alpha_), 2)
        else:
            items["risk"] = items["risk_unsupervised"]
        reasons, typology = ranked_reasons(frame, texts, typologies)
        items["reasons"] = reasons
        items["suspected_typology"] = typology
        hit_names = np.full(len(items), "", dtype=object)
        for name in hits.columns:
            hit_names = hit_names + np.where(hits[name].to_numpy(), name + ",", "")
        items["rules_hit"] = pd.Series(hit_names, index=items.index).str.rstrip(",")
        items = items.sort_values(["risk", "fence_distance"], ascending=[False, False], kind="stable",
                                  key=lambda s: s.abs() if s.name == "fence_distance" else s)
        items.insert(0, "rank", np.arange(1, len(items) + 1))
        items = self._select(items.reset_index(drop=True), ranker)
        return Scored(items, skipped, note, tempered)

    def _select(self, items: pd.DataFrame, ranker) -> pd.DataFrame:
        """Mark the alerts (``alert``, ``selected_by``) by the budget, write the supervised ranker's reasons for
        them, and each item's ``risk_percentile`` (the share of items scored below it)."""
        cfg = self.config.fusion
        risk = items["risk"].to_numpy(dtype=float)
        explore = cfg.explore_share if cfg.explore_share != "auto" else (0.1 if ranker is not None else 0.0)
        score = ranker.exploration(items) if ranker is not None and explore else None
        segment = items["hs2"].astype("string").fillna(items["item"].astype("string")).to_numpy() \
            if "hs2" in items else items["item"].to_numpy()
        alert, selected = choose(risk, threshold=cfg.alert_threshold, budget=cfg.budget, max_share=cfg.max_alert_share,
                                 explore_share=explore, explore_score=score, segment=segment)
        items["alert"] = alert
        items["selected_by"] = selected
        items["risk_percentile"] = np.round(100 * (pd.Series(risk).rank(method="min").to_numpy() - 1) / max(len(items), 1), 2)
        rows = np.flatnonzero(alert)
        reasons = items["reasons"].to_numpy(dtype=object).copy()
        typology = items["suspected_typology"].to_numpy(dtype=object).copy()
        if ranker is not None and len(rows):
            p = items["supervised_probability"].to_numpy(dtype=float)
            said = ranker.reasons(items, rows, p, currency=self.config.ingest.reporting_currency)
            u = items["risk_unsupervised"].to_numpy(dtype=float) / 100
            for i, text in zip(rows, said):
                first = p[i] >= ranker.alpha_ * u[i] or not reasons[i]
                reasons[i] = text if not reasons[i] else (f"{text} | {reasons[i]}" if first else f"{reasons[i]} | {text}")
                typology[i] = typology[i] or "learned_pattern"
        explored = rows[selected[rows] == "exploration"]
        if len(explored):
            why = (ranker.exploration_reasons(items.iloc[explored]) if ranker is not None else
                   [f"explored: no other alert is in {_segment_words(segment[i])}; among its riskiest items"
                    for i in explored])
            for i, text in zip(explored, why):
                reasons[i] = text + (f" | {reasons[i]}" if reasons[i] else "")
                typology[i] = typology[i] or "exploration"
        items["reasons"] = reasons
        items["suspected_typology"] = typology
        return items

    # ---- items -------------------------------------------------------------------------------------

    def _invoice_items(self, invoices: pd.DataFrame, transfers: pd.DataFrame | None, links=None) -> pd.DataFrame:
        cfg = self.config.reconciliation
        price = self.price_.explain(invoices)
        # an export declaration of a shipment also declared on import is the same movement again: it is
        # scored on its own figures, and the import line alone speaks for the trade in histories and rings
        once = ~counterpart_exports(invoices)
        fence = price["fence_distance"].to_numpy()
        entity = (entity_features(invoices, fence) if once.all()  # one side only: no copy of the frame
                  else entity_features(invoices[once], fence[once]).reindex(invoices.index))
        cycles = cycle_features(invoices, cfg.cycle_max_length, cfg.cycle_window_days)
        cycles["round_trip"] &= once
        parts = [invoices[[c for c in INVOICE_CONTEXT if c in invoices.columns] + _kept(invoices)],
                 price[PRICE_COLUMNS + [c for c in price.columns if c.endswith("_fence")]].rename(columns={}),
                 _name_net_mass(price[["reason"]].rename(columns={"reason": "price_reason"}), invoices, price),
                 kg_per_unit_deviation(invoices, self.kg_per_unit_),
                 shipment_features(invoices, cfg.repeat_window_days),
                 entity, cycles]
        if has_both_sides(invoices):  # both declarations of a shipment: every gap, not only the scored one
            parts.append(mirror_gaps(invoices, self.config.pricing.cif_fob_margin))
        if transfers is not None and len(transfers):
            link, tf = links if links is not None else self._transfer_links(invoices, transfers)
            parts.append(invoice_payment_features(invoices, transfers, tf, link, cfg.reporting_threshold))
            parts.append(_third_parties(invoices, transfers, tf, link))
        items = pd.concat(parts, axis=1)
        items["item"] = "invoice"
        items["log_value"] = np.log1p(items["reporting_value"].clip(lower=0))
        if "paid_ratio" in items:
            with np.errstate(divide="ignore", invalid="ignore"):
                items["log_paid_ratio"] = np.log(items["paid_ratio"].where(items["paid_ratio"] > 0))
        return items

    def _transfer_links(self, invoices, transfers):
        cfg = self.config.reconciliation
        links = link_transfers(invoices, transfers, LinkRule(cfg.amount_tolerance, cfg.window_before_days,
                                                             cfg.window_after_days))
        tf = transfer_features(invoices, transfers, links, self.high_risk_,
                               PaymentRule(cfg.reporting_threshold, cfg.structuring_band,
                                           cfg.structuring_window_days, cfg.round_amount_unit))
        return links, tf

    def _transfer_items(self, transfers, links) -> pd.DataFrame:
        if links is None:
            return pd.DataFrame({"item": pd.Series(dtype=object)})
        _, tf = links
        unmatched = ~tf["linked"].to_numpy()
        items = pd.concat([transfers[[c for c in TRANSFER_CONTEXT if c in transfers.columns] + _kept(transfers)], tf],
                          axis=1)
        items = items[unmatched].copy()
        items["item"] = "transfer"
        items["reporting_value"] = items["reporting_amount"]
        return items


def _segment_words(segment) -> str:
    text = str(segment)
    return f"HS chapter {text}" if text.isdigit() else f"the {text}s"


def _name_net_mass(reasons: pd.DataFrame, invoices: pd.DataFrame, price: pd.DataFrame) -> pd.DataFrame:
    """Where a line's weight is its net mass (no gross weight given), its per-kg reason says so."""
    if "weight_basis" not in invoices:
        return reasons
    net = (invoices["weight_basis"].astype("string") == "net").fillna(False).to_numpy()
    per_kg = (price["driver"].astype("string") == "value_per_kg").fillna(False).to_numpy()
    rows = net & per_kg
    if rows.any():
        reasons = reasons.copy()
        reasons.loc[rows, "price_reason"] = reasons.loc[rows, "price_reason"].str.replace(
            "value per kg", "value per kg of net mass", n=1, regex=False)
    return reasons


def _kept(frame: pd.DataFrame) -> list[str]:
    """Source columns a mapping asked to keep: they travel to items and alerts untouched."""
    return [c for c in frame.columns if c.startswith(KEPT_PREFIX)]


def _template_fields(rules) -> set[str]:
    """Every column name a rule's sentence uses."""
    fields = set()
    for rule in rules:
        fields |= {name for _, name, _, _ in string.Formatter().parse(rule.reason) if name}
    return fields


def _third_parties(invoices, transfers, tf, links) -> pd.DataFrame:
    """Per invoice, the first outsider in its payments and that outsider's country, for the reasons."""
    pos = links["invoice_pos"].to_numpy()
    payer_out = tf["third_party_payer"].to_numpy() | tf["payer_outside_corridor"].to_numpy()
    payee_out = tf["third_party_payee"].to_numpy() | tf["payee_outside_corridor"].to_numpy()
    rows = np.flatnonzero((pos >= 0) & (payer_out | payee_out))
    who = np.where(payer_out[rows], transfers["payer_id"].astype(object).to_numpy()[rows],
                   transfers["payee_id"].astype(object).to_numpy()[rows])
    where = np.where(payer_out[rows], transfers["payer_country"].astype(object).to_numpy()[rows],
                     transfers["payee_country"].astype(object).to_numpy()[rows])
    first = pd.DataFrame({"pos": pos[rows], "third_party_id": who, "third_party_country": where}).groupby("pos").first()
    out = first.reindex(np.arange(len(invoices)))
    out.index = invoices.index
    return out


def _price_typology(items: pd.DataFrame) -> pd.Series:
    direction = items["direction"].fillna("") if "direction" in items else pd.Series("", index=items.index)
    typology = np.where(direction == "under", "under_invoicing", "over_invoicing")
    if "chapter_prior_share" in items:  # a price that fits neither the code nor the trader: misdescribed goods
        novel = (items["chapter_prior_share"] == 0).to_numpy()
        typology = np.where(novel, "misdescribed_goods", typology)
    return pd.Series(typology, index=items.index)


def load_high_risk(path) -> frozenset[str]:
    data = read_yaml(resolve(path, "high_risk_jurisdictions.yaml"), ConfigError, "high-risk jurisdictions")
    codes = set()
    for key, value in data.items():
        if isinstance(value, list):
            codes |= {str(v).upper() for v in value}
    return frozenset(codes)
