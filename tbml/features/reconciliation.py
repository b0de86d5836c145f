"""Invoices against the transfers that pay them.

Linking rule (configurable in ``configs/default.yaml``, section ``reconciliation``):

1. A transfer whose ``invoice_ref`` names an invoice in the file is linked to it (``link = "reference"``).
   A reference to an invoice that is not in the file is kept unlinked and flagged (``ref_unknown``).
2. A transfer with no reference is linked by parties (payer = importer, payee = exporter), dated from
   ``window_before_days`` before the invoice (advance payments) to ``window_after_days`` after it. Among
   all of the pair's invoices in that window, one whose value matches the amount within
   ``amount_tolerance`` makes an ``amount`` link (the closest amount, then the nearest date): a busy pair
   has other invoices between a payment and the one it pays. With no such match, of the nearest invoice
   before and the nearest after the payment, the one whose value is closer to the amount makes a
   ``parties`` link (a part payment, say).
   An invoice whose seller is blank is matched only by importer and amount (an ``amount`` link).
3. Anything else stays unlinked: a payment with no invoice or shipment behind it in the file.

Export declarations (``declaration_side = export``) are never linked: payments settle the import side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tbml.features.keys import id_values
from tbml.features.windows import count_within, day_number
from tbml.wording import number, unit_name

CASH_LIKE = ("cash", "exchange_house", "money_transfer", "hawala")


@dataclass(frozen=True)
class LinkRule:
    amount_tolerance: float = 0.05
    window_before_days: int = 60
    window_after_days: int = 180


@dataclass(frozen=True)
class PaymentRule:
    reporting_threshold: float = 10_000.0  # in the reporting currency
    structuring_band: float = 0.15  # "just under": from threshold x (1 - band) up to the threshold
    structuring_window_days: int = 10
    round_amount_unit: float = 1_000.0


def link_transfers(invoices: pd.DataFrame, transfers: pd.DataFrame, rule: LinkRule = LinkRule()) -> pd.DataFrame:
    """Per transfer: ``invoice_pos`` (row position in ``invoices`` or -1), ``link``, ``ref_unknown`` and
    ``ref_rejected`` (the reference names an invoice that validation quarantined: ``rejected_invoice``,
    set by the caller, holds why)."""
    n = len(transfers)
    payable = _payable(invoices)
    position = np.full(n, -1, np.int64)
    link = np.full(n, "", dtype=object)
    ref = transfers["invoice_ref"].astype("string") if "invoice_ref" in transfers else pd.Series(pd.NA, index=transfers.index, dtype="string")
    found, cites = cited_invoices(ref, invoice_keys(invoices))
    found = np.where(found >= 0, np.where(payable[np.maximum(found, 0)], found, -1), -1)
    by_ref = found >= 0
    position[by_ref] = found[by_ref]
    link[by_ref] = "reference"
    rejected = (transfers["rejected_invoice"].astype("string").fillna("") != "").to_numpy() \
        if "rejected_invoice" in transfers else np.zeros(n, dtype=bool)
    ref_rejected = cites & ~by_ref & rejected
    ref_unknown = cites & ~by_ref & ~rejected

    # free text that names no invoice is no reference: such payments are matched like unreferenced ones
    open_rows = np.flatnonzero(~cites & ~rejected)
    if len(open_rows) and payable.any():
        pos, kind = _link_by_parties(invoices, transfers.iloc[open_rows], payable, rule)
        position[open_rows] = pos
        link[open_rows] = kind
    return pd.DataFrame({"invoice_pos": position, "link": link, "ref_unknown": ref_unknown,
                         "ref_rejected": ref_rejected}, index=transfers.index)


PAYMENT_COLUMNS = ("transfer_id", "date", "payer_id", "payer_country", "payee_id", "payee_country", "amount",
                   "currency", "reporting_amount", "channel", "invoice_ref")


def linked_payments(invoices: pd.DataFrame, transfers: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Every transfer with how it was linked (``link``, "" if not) and the key of the invoice it settles
    (``paid_invoice``: what payments cite, see ``invoice_keys``; null if unlinked), plus that invoice's
    file (``paid_invoice_file``) where rows carry ``file_sha256`` (a case store's union of files)."""
    at = links["invoice_pos"].to_numpy()
    keys = invoice_keys(invoices).to_numpy(dtype=object)
    out = transfers[[c for c in PAYMENT_COLUMNS if c in transfers]].copy()
    out["link"] = links["link"].to_numpy()
    out["paid_invoice"] = pd.array(np.where(at >= 0, keys[np.maximum(at, 0)], None), dtype="string")
    if "file_sha256" in invoices:
        files = invoices["file_sha256"].astype(object).to_numpy()
        out["paid_invoice_file"] = pd.array(np.where(at >= 0, files[np.maximum(at, 0)], None), dtype="string")
    return out.reset_index(drop=True)


def invoice_keys(invoices: pd.DataFrame) -> pd.Series:
    """What payments cite for each line: its commercial ``invoice_number`` where the file has one (a
    customs declaration's lines share it), else its ``invoice_id``."""
    ids = invoices["invoice_id"].astype("string")
    if "invoice_number" in invoices:
        ids = invoices["invoice_number"].astype("string").fillna(ids)
    return ids.fillna("")


def _payable(invoices: pd.DataFrame) -> np.ndarray:
    """Lines a payment can settle: not export declarations (payments settle the import side), and of the
    lines sharing a commercial invoice number, the first, which stands for the whole invoice."""
    out = np.ones(len(invoices), dtype=bool)
    if "declaration_side" in invoices:
        out &= (invoices["declaration_side"].astype("string").fillna("") != "export").to_numpy()
    if "invoice_number" in invoices:
        out &= ~invoice_keys(invoices).duplicated(keep="first").to_numpy()
    return out


def _first_line_of_invoice(invoices: pd.DataFrame) -> np.ndarray:
    """Per line, the position of the first line with its commercial invoice number (itself without one)."""
    if "invoice_number" not in invoices:
        return np.arange(len(invoices))
    codes = pd.factorize(invoice_keys(invoices))[0]
    first = pd.Series(np.arange(len(invoices))).groupby(codes).transform("min").to_numpy()
    return first


def settlement_value(invoices: pd.DataFrame) -> np.ndarray:
    """What a payment of each line is measured against: the line's value, or on the first line of a
    commercial invoice, the value of all its lines together."""
    value = invoices["reporting_value"].to_numpy(dtype=float)
    if "invoice_number" not in invoices:
        return value
    keys = invoice_keys(invoices).to_numpy()
    return pd.Series(value).groupby(keys).transform("sum").to_numpy()


_CANDIDATE = r"[^\s,;:()\[\]\"'|]+"


def cited_invoices(refs: pd.Series, keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per reference: the position in ``keys`` of the invoice it names (-1 if none in ``keys``) and whether
    it names an invoice at all.

    A reference is the invoice number itself, or free text holding it (``/INV/INV00001234 PAYMENT GOODS``,
    as banks carry remittance information). Any word of the text, or part of it between slashes, that
    equals an invoice number of the file (ignoring case) is a match. Text whose words do not look like
    the file's invoice numbers (same pattern of letters and digits) names no invoice: a note such as
    ``PAYMENT FOR GOODS`` is not a reference to a missing invoice.
    """
    n = len(refs)
    found = np.full(n, -1, np.int64)
    refs = refs.astype("string").str.strip()
    present = (refs.notna() & (refs != "")).fillna(False).to_numpy()
    if not present.any():
        return found, present
    # several lines may share one invoice number: a payment citing it goes to the first of them
    upper = keys.astype("string").str.upper().fillna("")
    first = pd.Series(np.arange(len(keys))).groupby(upper.to_numpy()).min()
    index = pd.Index(first.index)
    exact = index.get_indexer(refs.str.upper().fillna("").to_numpy())
    found[exact >= 0] = first.to_numpy()[exact[exact >= 0]]
    cites = present & (exact >= 0)
    rest = np.flatnonzero(present & (exact < 0))
    if not len(rest):
        return found, cites
    words = refs.iloc[rest].reset_index(drop=True).str.upper().str.extractall(f"({_CANDIDATE})")[0]
    parts = words.str.split("/").explode()
    tokens = pd.concat([words, parts]).str.strip("./-#_")
    tokens = tokens[tokens.str.len() > 0]
    if tokens.empty:
        return found, cites
    owner = tokens.index.get_level_values(0).to_numpy()
    hit = index.get_indexer(tokens.to_numpy())
    shapes = set(_shape(pd.Series(first.index)).unique())
    looks = _shape(tokens.reset_index(drop=True)).isin(shapes).to_numpy() & tokens.str.contains(r"\d").to_numpy()
    matched = pd.Series(np.where(hit >= 0, hit, np.iinfo(np.int64).max)).groupby(owner).min()
    ok = matched < np.iinfo(np.int64).max
    rows = rest[matched.index[ok].to_numpy()]
    found[rows] = first.to_numpy()[matched[ok].to_numpy()]
    cites[rows] = True
    named = np.unique(owner[looks])
    cites[rest[named]] = True
    return found, cites


def _shape(text: pd.Series) -> pd.Series:
    """``INV00001234`` -> ``A9``: a run of letters as A, a run of digits as 9, other characters kept."""
    return text.astype("string").str.replace(r"\d+", "9", regex=True).str.replace(r"[^\W\d_]+", "A", regex=True)


def _link_by_parties(invoices, transfers, payable, rule: LinkRule):
    importer, _ = id_values(invoices, "importer_id")
    exporter, exporter_known = id_values(invoices, "exporter_id")
    inv_day, value = day_number(invoices["date"]), settlement_value(invoices)
    payer, payee = id_values(transfers, "payer_id")[0], id_values(transfers, "payee_id")[0]
    pay_day, amount = day_number(transfers["date"]), transfers["reporting_amount"].to_numpy(dtype=float)
    pos = np.full(len(transfers), -1, np.int64)
    kind = np.full(len(transfers), "", dtype=object)
    named = payable & exporter_known
    if named.any():
        inv = pd.DataFrame({"pair": importer + "\x1f" + exporter, "day": inv_day, "value": value,
                            "pos": np.arange(len(invoices))})[named]
        pay = pd.DataFrame({"pair": payer + "\x1f" + payee, "day": pay_day, "amount": amount,
                            "row": np.arange(len(transfers))})
        pos, kind = _link_pairs(inv, pay, rule)
    unnamed = payable & ~exporter_known
    if unnamed.any():
        # An invoice whose seller is not named (customs import files often omit it) can still be matched by
        # who paid and how much: the importer paying its amount within the window. Never by parties alone.
        open_rows = np.flatnonzero(pos < 0)
        inv = pd.DataFrame({"pair": importer, "day": inv_day, "value": value, "pos": np.arange(len(invoices))})[unnamed]
        pay = pd.DataFrame({"pair": payer[open_rows], "day": pay_day[open_rows], "amount": amount[open_rows],
                            "row": np.arange(len(open_rows))})
        matched, at = _amount_in_window(inv, pay, rule)
        pos[open_rows[matched]], kind[open_rows[matched]] = at[matched], "amount"
    return pos, kind


def _link_pairs(inv: pd.DataFrame, pay: pd.DataFrame, rule: LinkRule):
    """Payments to invoices of the same payer -> payee pair (importer -> exporter)."""
    inv = inv.sort_values("day", kind="stable")
    pay = pay.sort_values("day", kind="stable")
    before = pd.merge_asof(pay, inv, on="day", by="pair", direction="backward",
                           tolerance=rule.window_after_days, suffixes=("", "_inv"))
    after = pd.merge_asof(pay, inv.rename(columns={"day": "inv_day"}).assign(day=lambda f: f["inv_day"]),
                          on="day", by="pair", direction="forward", tolerance=rule.window_before_days)
    before = before.sort_values("row")
    after = after.sort_values("row")
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_before = np.abs(np.log(before["amount"].to_numpy() / before["value"].to_numpy()))
        gap_after = np.abs(np.log(after["amount"].to_numpy() / after["value"].to_numpy()))
    gap_before = np.where(before["pos"].notna(), gap_before, np.inf)
    gap_after = np.where(after["pos"].notna(), gap_after, np.inf)
    use_after = gap_after < gap_before
    pos = np.where(use_after, after["pos"].to_numpy(dtype=float), before["pos"].to_numpy(dtype=float))
    gap = np.where(use_after, gap_after, gap_before)
    linked = np.isfinite(pos) & np.isfinite(np.where(np.isnan(gap), 0, gap)) & ~np.isnan(pos)
    kind = np.where(linked, np.where(gap <= np.log1p(rule.amount_tolerance), "amount", "parties"), "")
    pos = np.where(linked, pos, -1).astype(np.int64)
    # a busy pair has other invoices between a payment and the one it pays: look for the amount among all
    # of the pair's invoices in the window before settling for the nearest one
    matched, at = _amount_in_window(inv, pay.sort_values("row"), rule)
    pos[matched], kind[matched] = at[matched], "amount"
    return pos, kind.astype(object)


def _amount_in_window(inv: pd.DataFrame, pay: pd.DataFrame, rule: LinkRule, chunk: int = 200_000,
                      nearest: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per payment: whether an invoice of its pair in the date window has its amount (within
    ``amount_tolerance``), and the closest such invoice (by amount, then date).

    Invoices are sorted on one key, pair then 30-day period then log value, so a payment's candidates
    are a few short slices (one per period its window touches), never all of a busy pair's invoices;
    payments go through in chunks, so memory stays bounded on a million transfers."""
    n = len(pay)
    matched, at = np.zeros(n, dtype=bool), np.full(n, -1, np.int64)
    if not len(inv) or not n:
        return matched, at
    codes, _ = pd.factorize(pd.concat([inv["pair"], pay["pair"]], ignore_index=True))
    inv_code, pay_code = codes[: len(inv)].astype(float), codes[len(inv):].astype(float)
    inv_day, pay_day = inv["day"].to_numpy(), pay["day"].to_numpy()
    low = min(inv_day.min(), pay_day.min()) - rule.window_after_days - 60
    periods = float((max(inv_day.max(), pay_day.max()) + rule.window_before_days + 60 - low) // 30 + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_log, pay_log = np.log(inv["value"].to_numpy()), np.log(pay["amount"].to_numpy())
    usable = np.isfinite(inv_log)
    key = (inv_code[usable] * periods + (inv_day[usable] - low) // 30) * 100.0 + inv_log[usable]
    order = np.argsort(key, kind="stable")
    key, day_sorted = key[order], inv_day[usable][order]
    log_sorted, pos_sorted = inv_log[usable][order], inv["pos"].to_numpy()[usable][order]
    tolerance = np.log1p(rule.amount_tolerance)
    best_gap, best_lag = np.full(n, np.inf), np.full(n, np.inf)
    pay_period = (pay_day - low) // 30
    first_offset = -(rule.window_after_days // 30) - 1
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        rows = rows[np.isfinite(pay_log[rows])]
        for offset in range(first_offset, rule.window_before_days // 30 + 2):
            target = (pay_code[rows] * periods + pay_period[rows] + offset) * 100.0 + pay_log[rows]
            # the invoices nearest in value, at most `nearest` on each side: a busy pair may hold thousands
            # of invoices of almost the same value in one period, and the amount names none of them
            mid = np.searchsorted(key, target)
            lo = np.maximum(np.searchsorted(key, target - tolerance, side="left"), mid - nearest)
            hi = np.minimum(np.searchsorted(key, target + tolerance, side="right"), mid + nearest)
            count = hi - lo
            if not count.any():
                continue
            payment = np.repeat(rows, count)
            cand = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
            lag = pay_day[payment] - day_sorted[cand]
            fits = (lag >= -rule.window_before_days) & (lag <= rule.window_after_days)
            payment, cand, lag = payment[fits], cand[fits], np.abs(lag[fits])
            gap = np.abs(log_sorted[cand] - pay_log[payment])
            # keep a candidate only where it beats the payment's best so far: closer amount, then nearer date
            better = (gap < best_gap[payment]) | ((gap == best_gap[payment]) & (lag < best_lag[payment]))
            payment, cand, lag, gap = payment[better], cand[better], lag[better], gap[better]
            if not len(payment):
                continue
            pick = np.lexsort((lag, gap, payment))
            pick = pick[np.r_[True, payment[pick][1:] != payment[pick][:-1]]]
            best_gap[payment[pick]], best_lag[payment[pick]] = gap[pick], lag[pick]
            at[payment[pick]] = pos_sorted[cand[pick]]
    matched = at >= 0
    return matched, at


def transfer_features(invoices: pd.DataFrame, transfers: pd.DataFrame, links: pd.DataFrame,
                      high_risk: frozenset[str], rule: PaymentRule = PaymentRule()) -> pd.DataFrame:
    """Per transfer: who paid whom against the trade it settles, where, how, and near which threshold."""
    pos = links["invoice_pos"].to_numpy()
    linked = pos >= 0
    at = np.maximum(pos, 0)

    def of_invoice(column):
        values, known = id_values(invoices, column)
        return np.where(linked & known[at] if len(values) else linked, values[at] if len(values) else None, None)

    importer, exporter = of_invoice("importer_id"), of_invoice("exporter_id")
    imp_c, exp_c = of_invoice("importer_country"), of_invoice("exporter_country")
    payer, payee = transfers["payer_id"].astype(object).to_numpy(), transfers["payee_id"].astype(object).to_numpy()
    payer_c = transfers["payer_country"].astype(object).to_numpy()
    payee_c = transfers["payee_country"].astype(object).to_numpy()
    amount = transfers["reporting_amount"].to_numpy(dtype=float)
    raw_amount = transfers["amount"].to_numpy(dtype=float)
    channel = transfers["channel"].astype("string").fillna("").to_numpy() if "channel" in transfers else np.full(len(transfers), "")
    day = day_number(transfers["date"])
    lo = rule.reporting_threshold * (1 - rule.structuring_band)
    near = (amount >= lo) & (amount < rule.reporting_threshold)
    inv_day = np.where(linked, day_number(invoices["date"])[at] if len(invoices) else 0, 0)
    return pd.DataFrame({
        "linked": linked,
        "link": links["link"].to_numpy(),
        "ref_unknown": links["ref_unknown"].to_numpy(),
        "ref_rejected": links["ref_rejected"].to_numpy(),
        "third_party_payer": linked & (payer != importer),
        "third_party_payee": linked & (exporter != None) & (payee != exporter),  # noqa: E711 - elementwise
        "payer_outside_corridor": linked & (payer_c != imp_c) & (payer_c != exp_c),
        "payee_outside_corridor": linked & (payee_c != imp_c) & (payee_c != exp_c),
        # hashed membership (pandas), not np.isin, which sorts Python strings: 10 s at 200k transfers
        "high_risk_country": pd.Series(payer_c).isin(high_risk).to_numpy() | pd.Series(payee_c).isin(high_risk).to_numpy(),
        "round_amount": (raw_amount >= rule.round_amount_unit) & (np.mod(raw_amount, rule.round_amount_unit) == 0),
        "cash_like": pd.Series(channel).isin(CASH_LIKE).to_numpy(),
        "near_threshold": near,
        "under_threshold": amount < rule.reporting_threshold,
        # near-threshold payments from the same payer to the same payee within the window, this one included:
        # one obligation split up, not a busy importer paying many suppliers
        "structuring_count": count_within(payer.astype(str) + "\x1f" + payee.astype(str), day,
                                          rule.structuring_window_days, near),
        "payee_is_trader": pd.Series(payee).isin(set(_traders(invoices))).to_numpy(),
        "payment_lag_days": np.where(linked, day - inv_day, np.nan),
    }, index=transfers.index)


def _traders(invoices: pd.DataFrame) -> np.ndarray:
    ids = []
    for column in ("importer_id", "exporter_id"):
        values, known = id_values(invoices, column)
        ids.append(pd.unique(values[known]))
    return np.unique(np.concatenate(ids).astype(str))


def invoice_payment_features(invoices: pd.DataFrame, transfers: pd.DataFrame, tf: pd.DataFrame,
                             links: pd.DataFrame, reporting_threshold: float = 10_000.0) -> pd.DataFrame:
    """Per invoice: how it was paid (count, share of its value, timing), the worst of its payments' flags,
    and whether it was split under the reporting threshold.

    ``split_payments`` counts the invoice's payments below ``reporting_threshold`` when the invoice is worth
    at least the threshold and those payments together reach it: one reportable obligation settled in pieces
    that each escape the report, which is what structuring is (0 otherwise). ``split_span_days`` is the time
    from the first piece to the last.
    """
    n = len(invoices)
    pos = links["invoice_pos"].to_numpy()
    linked = pos >= 0
    value = settlement_value(invoices)
    amount = transfers["reporting_amount"].to_numpy(dtype=float)
    full = amount[linked] >= 0.9 * value[pos[linked]]
    frame = pd.DataFrame({"pos": pos[linked], "amount": amount[linked], "full": full,
                          # paid in full by a payment that cites this very invoice: party matching can guess wrong
                          "full_referenced": full & (links["link"].to_numpy()[linked] == "reference"),
                          "lag": tf["payment_lag_days"].to_numpy()[linked]})
    for flag in ("third_party_payer", "third_party_payee", "payer_outside_corridor", "payee_outside_corridor",
                 "high_risk_country", "cash_like", "near_threshold", "under_threshold"):
        frame[flag] = tf[flag].to_numpy()[linked]
    frame["under_amount"] = np.where(frame["under_threshold"], frame["amount"], 0.0)
    frame["under_lag"] = np.where(frame["under_threshold"], frame["lag"], np.nan)
    frame["structuring_count"] = tf["structuring_count"].to_numpy()[linked]
    grouped = frame.groupby("pos")
    agg = grouped.agg(n_payments=("amount", "size"), paid=("amount", "sum"), n_full_payments=("full", "sum"),
                      n_full_referenced=("full_referenced", "sum"),
                      first_lag=("lag", "min"), last_lag=("lag", "max"),
                      **{f: (f, "max") for f in ("third_party_payer", "third_party_payee", "payer_outside_corridor",
                                                 "payee_outside_corridor", "high_risk_country", "cash_like",
                                                 "structuring_count")},
                      n_near_threshold=("near_threshold", "sum"), n_under=("under_threshold", "sum"),
                      under_paid=("under_amount", "sum"), under_first=("under_lag", "min"),
                      under_last=("under_lag", "max"))
    # every line of a commercial invoice shows how that invoice was paid (its payments link to its first line)
    first = _first_line_of_invoice(invoices)
    out = agg.reindex(first)
    value = value[first]
    out.index = invoices.index
    counts = ["n_payments", "n_full_payments", "n_full_referenced", "n_near_threshold", "structuring_count"]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    flags = ["third_party_payer", "third_party_payee", "payer_outside_corridor", "payee_outside_corridor",
             "high_risk_country", "cash_like"]
    out[flags] = out[flags].fillna(False).astype(bool)
    out["paid"] = out["paid"].fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["paid_ratio"] = np.where(value > 0, out["paid"].to_numpy() / value, np.nan)
    out["payable"] = _payable(invoices)
    split = ((value >= reporting_threshold) & (out["under_paid"].fillna(0.0).to_numpy() >= reporting_threshold)
             & (out["n_under"].fillna(0).to_numpy() >= 2))
    out["split_payments"] = np.where(split, out["n_under"].fillna(0).to_numpy(), 0).astype(np.int64)
    out["split_span_days"] = np.where(split, (out["under_last"] - out["under_first"]).to_numpy(), np.nan)
    out = out.drop(columns=["n_under", "under_paid", "under_first", "under_last"])
    return out.rename(columns={"first_lag": "first_payment_lag_days", "last_lag": "last_payment_lag_days"})


def shipment_features(invoices: pd.DataFrame, window_days: int = 60, value_tolerance: float = 0.05) -> pd.DataFrame:
    """Multiple invoicing, the same goods invoiced again: per line, the other invoices of its shipment for
    the same HS6 (``shipment_invoice_count``, weak: a shipment may carry several lines of one code), of
    them the ones for the same quantity too (``shipment_same_goods``), and, by shipment or not, the
    invoices between the same parties for the same HS6 and quantity, within ``window_days`` and
    ``value_tolerance`` in value (``repeat_same_goods``)."""
    payable = _payable(invoices)
    hs6 = invoices["hs6"].astype(str).to_numpy()
    quantity, measured = _amount_of_goods(invoices)
    same_shipment = np.zeros(len(invoices), np.int64)
    same_goods = np.zeros(len(invoices), np.int64)
    ref, has_ref = id_values(invoices, "shipment_ref")
    if has_ref.any():
        has = has_ref & payable
        key = pd.Series(ref + "|" + hs6)
        same_shipment[has] = key[has].map(key[has].value_counts()).to_numpy() - 1
        goods = key + "|" + quantity
        # "the same goods" needs an amount of goods: lines with neither quantity nor weight never match
        both = has & measured
        same_goods[both] = goods[both].map(goods[both].value_counts()).to_numpy() - 1
    importer, exporter = id_values(invoices, "importer_id")[0], id_values(invoices, "exporter_id")[0]
    key = importer + "|" + exporter + "|" + hs6.astype(object) + "|" + quantity
    repeats = _repeats(key, day_number(invoices["date"]), invoices["reporting_value"].to_numpy(dtype=float),
                       payable & measured, window_days, value_tolerance)
    return pd.DataFrame({"shipment_invoice_count": same_shipment, "shipment_same_goods": same_goods,
                         "repeat_same_goods": repeats, "goods_amount": _goods_amount_text(invoices, repeats > 0
                                                                                          | (same_goods > 0))},
                        index=invoices.index)


def _goods_amount_text(invoices: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """For the reasons of ``rows``: "quantity 1,200 pieces", or "1,250 kg gross weight" where no quantity is
    given (figures and units in ``tbml.wording``'s words)."""
    out = np.full(len(invoices), "", dtype=object)
    n = len(invoices)
    quantity = invoices["quantity"].to_numpy(dtype=float, na_value=np.nan) if "quantity" in invoices else np.full(n, np.nan)
    weight = (invoices["gross_weight_kg"].to_numpy(dtype=float, na_value=np.nan) if "gross_weight_kg" in invoices
              else np.full(n, np.nan))
    unit = (invoices["quantity_unit"].astype("string").fillna("").to_numpy(dtype=object) if "quantity_unit" in invoices
            else np.full(n, "", dtype=object))
    basis = (invoices["weight_basis"].astype("string").fillna("gross").to_numpy(dtype=object)
             if "weight_basis" in invoices else np.full(n, "gross", dtype=object))
    for i in np.flatnonzero(rows):
        if not np.isnan(quantity[i]):
            out[i] = f"quantity {number(quantity[i])} {unit_name(unit[i], plural=True)}".rstrip()
        elif not np.isnan(weight[i]):
            out[i] = f"{number(weight[i])} kg {basis[i]} weight"
    return out


def _amount_of_goods(invoices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per line, its quantity as a key ("kg 1250" from the gross weight where no quantity is given) and
    whether it has either."""
    n = len(invoices)
    def column(name):
        return invoices[name].to_numpy(dtype=float, na_value=np.nan) if name in invoices else np.full(n, np.nan)
    quantity, weight = column("quantity"), column("gross_weight_kg")
    has_quantity, has_weight = ~np.isnan(quantity), ~np.isnan(weight)
    key = np.full(n, "", dtype=object)
    key[has_quantity] = np.round(quantity[has_quantity], 3).astype(str)
    by_weight = ~has_quantity & has_weight
    key[by_weight] = "kg " + np.round(weight[by_weight], 1).astype(str).astype(object)
    return key, has_quantity | has_weight


def _repeats(key, day, value, mask, window: int, tolerance: float) -> np.ndarray:
    """Per line, how many of its neighbours (same key, next or previous in date order) lie within ``window``
    days and ``tolerance`` in value: a repeat order differs in price, a re-issued invoice does not."""
    out = np.zeros(len(key), np.int64)
    rows = np.flatnonzero(mask)
    if len(rows) < 2:
        return out
    order = rows[np.lexsort((day[rows], pd.factorize(pd.Series(key[rows]))[0]))]
    same = key[order][1:] == key[order][:-1]
    close = (day[order][1:] - day[order][:-1] <= window)
    with np.errstate(divide="ignore", invalid="ignore"):
        alike = np.abs(np.log(value[order][1:] / value[order][:-1])) <= np.log1p(tolerance)
    pair = same & close & alike
    np.add.at(out, order[1:][pair], 1)
    np.add.at(out, order[:-1][pair], 1)
    return out
