"""Exchange rates as they are today: the ECB's daily reference rates, fixed pegs, users' own tables."""

import csv
import io
import zipfile
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from tbml.errors import InputFileError
from tbml.fx import FxTable
from tbml.ingest import load_invoices

ECB_CURRENCIES = ["EUR", "USD", "JPY", "CZK", "DKK", "GBP", "HUF", "PLN", "RON", "SEK", "CHF", "ISK", "NOK", "TRY",
                  "AUD", "BRL", "CAD", "CNY", "HKD", "IDR", "ILS", "INR", "KRW", "MXN", "MYR", "NZD", "PHP", "SGD",
                  "THB", "ZAR"]
PEGGED = ["AED", "SAR", "QAR", "OMR", "BHD", "JOD", "PAB", "XOF", "XAF", "BAM"]


def _ecb_rows() -> dict[str, dict[str, str]]:
    """The ECB file read with the csv module, independently of tbml: {date: {currency: per EUR}}."""
    with resources.as_file(resources.files("currency_converter") / "eurofxref-hist.zip") as path:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode()
    return {row["Date"]: row for row in csv.DictReader(io.StringIO(text))}


def test_rates_are_the_ecb_reference_rates_of_the_day():
    ecb = _ecb_rows()
    fx = FxTable.load()
    day = "2024-03-15"  # a Friday
    row = ecb[day]
    dates = pd.Series(pd.to_datetime([day, "2024-03-16", "2024-03-17"]))  # Saturday, Sunday: Friday's rate
    for cur in ("GBP", "JPY", "INR", "KRW", "BRL"):
        expected = float(row[cur]) / float(row["USD"])
        assert fx.per_usd(pd.Series([cur] * 3), dates, 92) == pytest.approx([expected] * 3, rel=1e-12)
    assert fx.per_usd(pd.Series(["EUR"]), dates[:1], 92)[0] == pytest.approx(1 / float(row["USD"]), rel=1e-12)


def test_pegs_are_exact_and_never_need_the_table():
    fx = FxTable.load()
    late = pd.Series(pd.to_datetime(["2031-06-01"] * 3))  # years after the table ends
    rate, carried = fx.rates_to(pd.Series(["AED", "USD", "SAR"]), late, "USD", 92)
    assert rate.tolist() == [1 / 3.6725, 1.0, 1 / 3.75] and not carried.any()
    rate, _ = fx.rates_to(pd.Series(["XOF", "EUR"]), late[:2], "EUR", 92)
    assert rate.tolist() == [1 / 655.957, 1.0]
    rate, _ = fx.rates_to(pd.Series(["XOF"]), late[:1], "XAF", 92)
    assert rate[0] == pytest.approx(1.0)
    # across anchors the table is needed, and it is too old
    rate, _ = fx.rates_to(pd.Series(["AED"]), late[:1], "EUR", 92)
    assert np.isnan(rate[0])


def test_after_the_table_ends_the_last_rate_is_carried_up_to_the_stated_age():
    fx = FxTable.load()
    last = pd.Timestamp(fx.last_dates()["GBP"])
    dates = pd.Series([last, last + pd.Timedelta(days=30), last + pd.Timedelta(days=93)])
    rate, carried = fx.rates_to(pd.Series(["GBP"] * 3), dates, "USD", 92)
    assert rate[0] == rate[1] and np.isnan(rate[2])
    assert carried.tolist() == [False, True, False]
    before = fx.per_usd(pd.Series(["GBP"]), pd.Series(pd.to_datetime(["1998-06-01"])), 92)
    assert np.isnan(before[0])  # the ECB series starts in 1999


def test_a_users_table_replaces_only_its_own_currencies(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("date,currency,per_usd\n2025-01-01,EUR,0.9\n2025-02-01,EUR,0.8\n2025-01-01,NGN,1500\n")
    fx = FxTable.load(path)
    dates = pd.Series(pd.to_datetime(["2025-01-15", "2025-02-02", "2025-01-20", "2025-01-20"]))
    rates = fx.per_usd(pd.Series(["EUR", "EUR", "NGN", "GBP"]), dates, 31)
    assert rates[:3].tolist() == [0.9, 0.8, 1500.0]
    assert rates[3] == FxTable.load().per_usd(pd.Series(["GBP"]), dates[2:3], 31)[0]  # still the ECB's
    assert str(path) in fx.source
    path.write_text("date,currency,per_usd\n2025-01-01,EUR,-1\n")
    with pytest.raises(InputFileError, match="rates.csv: FX rate table row 1"):
        FxTable.load(path)


def _file_of_2026(tmp_path, currencies):
    rows = ["invoice_id,date,importer_id,exporter_id,exporter_country,importer_country,hs_code,quantity,"
            "quantity_unit,value,currency"]
    for i, cur in enumerate(currencies):
        for month in (1, 4, 7, 10, 11):  # November 2026 is past the table's end
            rows.append(f"I{i}-{month},2026-{month:02d}-{10 + i % 15:02d},IMP{i},EXP{i},CN,GB,851713,10,NAR,"
                        f"{1000 + i},{cur}")
    path = tmp_path / "invoices_2026.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_file_dated_2026_in_every_ecb_and_pegged_currency_loses_no_row(tmp_path):
    path = _file_of_2026(tmp_path, ECB_CURRENCIES + PEGGED)
    result = load_invoices(path)
    assert result.stats["rows_quarantined"] == 0, result.quarantined[["reason", "detail"]].head()
    assert result.stats["rows_accepted"] == 5 * len(ECB_CURRENCIES + PEGGED)
    usd = result.accepted[result.accepted["currency"] == "USD"]
    assert (usd["fx_rate"] == 1.0).all() and (usd["reporting_value"] == usd["value"]).all()
    # lines dated after the ECB file's last day are counted and said, never silently converted
    assert result.stats["fx_rates_carried_forward"] > 0
    assert any("after the rate table ends" in note for note in result.stats["notes"])


def test_a_currency_the_builtin_rates_cannot_know_is_quarantined_with_the_key_to_set(tmp_path):
    path = _file_of_2026(tmp_path, ["EUR", "NGN"])
    result = load_invoices(path)
    assert result.stats["quarantine_reasons"] == {"no_fx_rate": 5}
    assert set(result.quarantined["invoice_id"].str[:2]) == {"I1"}
    assert result.quarantined["detail"].str.contains("ingest.fx_rates").all()
    note = " ".join(result.stats["notes"])
    assert "NGN (5 rows" in note and "not in the built-in rates" in note and "ingest.fx_rates" in note


def test_reporting_currency_never_needs_a_rate(tmp_path):
    path = tmp_path / "eur.csv"
    path.write_text("invoice_id,date,importer_id,exporter_country,importer_country,hs_code,quantity,value,currency\n"
                    "A,2040-01-01,I,CN,DE,851713,1,100,EUR\n")
    from tbml.config import Config, IngestConfig
    result = load_invoices(path, config=Config(ingest=IngestConfig(reporting_currency="EUR")))
    assert result.stats["rows_accepted"] == 1 and result.accepted["fx_rate"].tolist() == [1.0]


def test_a_rate_table_that_is_not_a_regular_file_is_one_line(tmp_path):
    import os
    os.mkfifo(tmp_path / "rates.csv")
    with pytest.raises(InputFileError, match="rates.csv: FX rate table is not a regular file"):
        FxTable.load(tmp_path / "rates.csv")
