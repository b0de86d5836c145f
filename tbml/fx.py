"""Date-aware exchange rates: convert amounts to a reporting currency with the rate in force at each date.

A rate applies from its date until the next rate for that currency, and for at most ``max_age_days``.
A currency or date the table does not cover gives NaN, which the caller quarantines as ``no_fx_rate``:
tbml never guesses a rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from tbml.errors import InputFileError
from tbml.schema import currency_codes

BUILTIN = "builtin"


@dataclass(frozen=True)
class FxTable:
    """Rates as units of each currency per 1 USD, sorted by currency then date."""

    rates: pd.DataFrame
    source: str

    @classmethod
    def load(cls, spec: str | Path = BUILTIN) -> FxTable:
        """The shipped table (``"builtin"``) or a CSV / Parquet file with columns date, currency, per_usd."""
        if str(spec) == BUILTIN:
            with resources.as_file(resources.files("tbml") / "data" / "fx_rates_usd.csv") as path:
                return cls(_read_rates(path), f"builtin:{path.name}")
        path = Path(spec)
        if not path.exists():
            raise InputFileError(f"{path}: FX rate table not found")
        return cls(_read_rates(path), str(path))

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.rates["currency"].unique())

    def per_usd(self, currency: pd.Series, date: pd.Series, max_age_days: int) -> np.ndarray:
        """Units of ``currency`` per USD in force at each ``date``; NaN where the table has none."""
        out = np.full(len(currency), np.nan)
        if len(currency) == 0:
            return out
        days = _days(date)
        codes, uniques = pd.factorize(currency.astype("string"), sort=False)
        by_currency = {cur: grp for cur, grp in self.rates.groupby("currency", sort=False)}
        for code, cur in enumerate(uniques):
            table = by_currency.get(cur)
            if table is None:
                continue
            rows = np.flatnonzero(codes == code)
            table_days = _days(table["date"])
            pos = np.searchsorted(table_days, days[rows], side="right") - 1
            ok = pos >= 0
            ok[ok] &= (days[rows][ok] - table_days[pos[ok]]) <= max_age_days
            out[rows[ok]] = table["per_usd"].to_numpy()[pos[ok]]
        return out

    def convert(
        self, amount: pd.Series, currency: pd.Series, date: pd.Series, to: str, max_age_days: int
    ) -> np.ndarray:
        """``amount`` in ``currency`` expressed in ``to`` at each date; NaN where either rate is missing."""
        source_rate = self.per_usd(currency, date, max_age_days)
        target = pd.Series(to, index=currency.index, dtype="string")
        target_rate = self.per_usd(target, date, max_age_days)
        return amount.to_numpy(dtype=np.float64) / source_rate * target_rate


def _days(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[D]").astype(np.int64)


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
