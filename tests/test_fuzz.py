"""Fuzzing the loaders: hypothesis writes CSV bytes (delimiters, quotes, encodings, numbers, dates, blank,
odd and huge cells, shuffled or missing headers, raw bytes) and tbml validates and scores them in-process.
Every run must end in accepted and quarantined rows that add up, or in a ``TBMLError``; nothing else."""

import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbml.api import score_files, validate_files
from tbml.errors import TBMLError

COLUMNS = ["invoice_id", "date", "importer_id", "exporter_id", "exporter_country", "importer_country", "hs_code",
           "quantity", "quantity_unit", "gross_weight_kg", "value", "currency"]
GOOD = {"invoice_id": "I{i}", "date": "2026-0{m}-1{d}", "importer_id": "IMP{d}", "exporter_id": "EXP{m}",
        "exporter_country": "CN", "importer_country": "GB", "hs_code": "85171{d}", "quantity": "1{i}",
        "quantity_unit": "NAR", "gross_weight_kg": "{m}.5", "value": "10{i}0", "currency": "USD"}

odd_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.integers(-10**20, 10**20).map(str),
                    st.sampled_from(["1,5", "1.500,25", "1,500", "-0", "1e309", "1e-320", "NaN", "NA", "N/A",
                                     "\uff11\uff12", "\u0661\u0662", " 12 ", "12%", "$12"]))
dates = st.one_of(st.dates().map(str), st.sampled_from(["0001-01-01", "9999-12-31", "31/02/2026", "2026-13-01",
                                                        "20260301", "yesterday", "2026-03-01T10:00:00+05:00"]))
cell = st.one_of(st.just(None), st.just(""), odd_text, numbers, dates,
                 st.sampled_from(['"', '""', "a,b", "a;b", "a\nb", "=1+1", "NULL", "\u200b"]))


@st.composite
def csv_files(draw):
    if draw(st.integers(0, 19)) == 0:  # now and then, bytes that are not a CSV at all
        return draw(st.binary(min_size=1, max_size=300))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = list(COLUMNS)
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if draw(st.integers(0, 4)) == 0:  # a column or two missing
        header = header[: draw(st.integers(len(header) - 2, len(header)))]
    odd_share = draw(st.sampled_from([0.0, 0.02, 0.1, 0.4]))
    rows = []
    for i in range(draw(st.integers(1, 25))):
        row = []
        for name in header:
            good = GOOD[name].format(i=i, m=i % 9 + 1, d=i % 7)
            value = draw(cell) if draw(st.floats(0, 1)) < odd_share else good
            row.append(good if value is None else value)
        rows.append(row)
    if draw(st.integers(0, 30)) == 0:
        rows[0][0] = "x" * 200_000  # a huge cell

    def quote(value):
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = "\n".join(delimiter.join(quote(v) for v in row) for row in [header, *rows]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


def _accounts(result) -> None:
    for loaded in result.results if hasattr(result, "results") else result.validation.results:
        s = loaded.stats
        assert s["rows_in"] == s["rows_accepted"] + s["rows_quarantined"]
        assert len(loaded.accepted) == s["rows_accepted"] and len(loaded.quarantined) == s["rows_quarantined"]


def _through(data: bytes, load):
    """``load(path, out_dir)`` on ``data`` written to a file: its result, or None after a one-line TBMLError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no numpy warnings flooding stderr either
            try:
                result = load(path, out_dir=Path(tmp) / "out")
            except TBMLError as exc:
                assert str(exc) and "\n" not in str(exc).strip()
                return None
    _accounts(result)
    return result


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(csv_files())
def test_validate_ends_in_rows_that_add_up_or_one_tbml_error(data):
    _through(data, validate_files)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(csv_files())
def test_score_ends_in_rows_that_add_up_or_one_tbml_error(data):
    result = _through(data, score_files)
    if result is not None:
        assert (result.alerts["reasons"].fillna("").str.strip() != "").all()
