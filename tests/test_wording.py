"""What an investigator reads: figures keep their digits, units and features are said in words, and the
reasons of a scored file carry no internal name and can be redone by hand."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tbml.config import ForestConfig
from tbml.detectors.fusion import forest_reasons, money_reasons
from tbml.detectors.rules import Rule, load_rules, render
from tbml.ingest import load_invoices, load_transfers
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.synth import TYPOLOGIES, generate
from tbml.units import CANONICAL_UNITS
from tbml.wording import (FOREST_FEATURES, GLOSSARY, TYPOLOGY_NAMES, UNIT_NAMES, feature_phrase, number, per_unit,
                          percent, price_unit, ratio, typology_name)

README = Path(__file__).parents[1] / "README.md"


def _value(text: str) -> float:
    return float(text.replace(",", "").rstrip("x%"))


@pytest.mark.parametrize("exponent", range(-6, 10))
def test_a_figure_keeps_four_significant_digits_at_any_magnitude(exponent):
    for mantissa in (1.0, 1.234567, 4.12, 9.87654, 9.99951):
        x = mantissa * 10.0 ** exponent
        for sign in (1, -1):
            text = number(sign * x)
            assert "e" not in text.lower(), text  # never an exponent an investigator must decode
            assert _value(text) == pytest.approx(sign * x, rel=5e-4), text
            assert _value(ratio(sign * x)) == pytest.approx(sign * x, rel=5e-3)


def test_figures_read_as_written_by_hand():
    assert [number(x) for x in (0.000412, 0.0412, 4.12, 412, 41_234.6, 4_120_000, 1_234_567_890)] == [
        "0.000412", "0.0412", "4.12", "412", "41,235", "4,120,000", "1,234,567,890"]
    assert [number(x) for x in (0.0, 999.96, -0.5, float("nan"), None)] == ["0", "1,000", "-0.5", "n/a", "n/a"]
    assert [ratio(x) for x in (8.9, 890.2, 0.01234, 24.09)] == ["8.9x", "890x", "0.0123x", "24.1x"]
    assert percent(0.00699) == "0.7%" and percent(0.5) == "50%"


def test_every_canonical_unit_is_said_in_words():
    assert set(CANONICAL_UNITS) <= set(UNIT_NAMES)  # a new canonical unit needs its words
    assert price_unit("USD", "NAR") == "USD per piece" and price_unit("USD", "KGM") == "USD per kg"
    assert price_unit("USD", "LTR") == "USD per litre" and price_unit("USD", "NPR") == "USD per pair"
    assert price_unit("EUR", "SET") == "EUR per set" and per_unit("MTK") == "per m²"
    assert price_unit("USD", "XYZ") == "USD per unit written 'XYZ'"
    assert price_unit("USD", None) == "USD" and per_unit(pd.NA) == ""


def test_every_forest_feature_is_said_in_plain_words():
    assert set(ForestConfig().features) <= set(FOREST_FEATURES)
    for name in ForestConfig().features:
        for value, typical in ((2.5, 0.0), (-3.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.833, 0.0)):
            text = feature_phrase(name, value, typical)
            assert name not in text and "_" not in text, text
    assert feature_phrase("log_paid_ratio", np.log(2.3), 0.0) == "paid 2.3 times the invoice value (typically 1)"
    assert feature_phrase("unit_price_fence", 4.86, 0.0) == "unit price 4.9 IQRs above Q3 of its peers (on log prices)"
    assert feature_phrase("log_value", np.log1p(52_000), np.log1p(10_000), "EUR") == (
        "invoice value 52,000 EUR (typically 10,000 EUR)")
    assert feature_phrase("my_own_column", 3.0, 1.0) == "my own column 3 (typically 1)"


def test_every_typology_has_a_name_and_the_glossary_explains_the_terms():
    rule_typologies = {rule.typology for rule in load_rules()}
    assert set(TYPOLOGIES) | rule_typologies | {"unusual_profile"} <= set(TYPOLOGY_NAMES)
    assert typology_name("over_invoicing") == "over-invoicing" and typology_name("new_one") == "new one"
    terms = [term for term, _ in GLOSSARY]
    for needed in ("risk", "peer group", "median, Q1, Q3", "fence", "IQR on log prices", "mirror gap",
                   "third-party payment", "unusual profile", "typologies"):
        assert needed in terms
    glossary = README.read_text(encoding="utf-8").split("## Glossary", 1)[1].split("\n## ", 1)[0]
    for term in terms:  # the README's glossary says the same terms as the report's
        assert f"**{term}**" in glossary, term


def test_a_rule_sentence_keeps_small_figures_and_says_units_in_words():
    rule = Rule("weight_quantity_mismatch", "over_under_shipment", "high",
                "{kg_per_unit} kg {quantity_unit:per}, {quantity} {quantity_unit}, median {kg_per_unit_median}")
    row = {"kg_per_unit": 0.000412, "quantity_unit": "NAR", "quantity": 12_000.0, "kg_per_unit_median": 0.0525}
    assert render(rule, row, {}) == "0.000412 kg per piece, 12,000 pieces, median 0.0525"
    # a rules file written for tbml 0.2 keeps its own number formats
    old = Rule("round_amount", "phantom_shipment", "low", "a round payment of {amount:,.0f} {currency}")
    assert render(old, {"amount": 25_000.0, "currency": "USD"}, {}) == "a round payment of 25,000 USD"
    assert render(old, {"amount": float("nan"), "currency": "USD"}, {}) == "a round payment of ? USD"
    weight = Rule("weight_quantity_mismatch", "over_under_shipment", "high", "{kg_per_unit:,.2f} kg per {quantity_unit}")
    assert render(weight, row, {}) == "0.00 kg per piece"  # its own format, but the unit in words


def test_money_and_forest_sentences_only_where_they_count():
    index = pd.RangeIndex(3)
    money = money_reasons(np.array([0.2, 0.0, 0.1]), pd.Series([1_755_501.0, 0.0, 12.5]), 52_680.0, "USD")
    assert money.tolist() == ["about 1,755,501 USD beyond the price fence, 33.3 times the median invoice value "
                              "(52,680 USD)", "", "about 12.5 USD beyond the price fence, 0.000237 times the "
                              "median invoice value (52,680 USD)"]
    forest = forest_reasons(np.array([0.1, 0.0, 0.3]), pd.Series([0.993, 0.2, 1.0], index=index),
                            pd.Series(["paid 2.3 times the invoice value (typically 1)", "x", ""], index=index))
    assert forest.tolist() == ["unusual profile (isolation forest: among the 0.7% strangest lines): paid 2.3 "
                               "times the invoice value (typically 1)", "",
                               "unusual profile (isolation forest: among the 0.1% strangest lines)"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """6,000 generated invoices with transfers and half their shipments declared on both sides, scored."""
    folder = tmp_path_factory.mktemp("wording")
    data = generate(6_000, laundering_rate=0.05, seed=13, mirror_share=0.5)
    write_table(data.invoices, folder / "invoices.csv")
    write_table(data.transfers, folder / "transfers.csv")
    invoices = load_invoices(folder / "invoices.csv").accepted
    transfers = load_transfers(folder / "transfers.csv").accepted
    return TBMLModel().fit_score(invoices, transfers).items


# codes are spelt with underscores; "structuring" is a code and a word
INTERNAL = [name for name in (*ForestConfig().features, *(rule.name for rule in load_rules()), *TYPOLOGY_NAMES)
            if "_" in name] + ["IQR)", "typical 0", "reference lines"]
UNIT_CODE = re.compile(r"/\s*[A-Z]{3}\b|\b(?:" + "|".join(CANONICAL_UNITS) + r")\b")


def test_reasons_of_a_scored_file_carry_no_internal_name(scored):
    reasons = scored.loc[scored["risk"] >= 30, "reasons"]
    assert len(reasons) > 100 and reasons.str.contains("unusual profile").any()
    for text in reasons:
        assert not UNIT_CODE.search(text), text
        for name in INTERNAL:
            assert name not in text, (name, text)


def test_price_reasons_of_a_scored_file_can_be_redone_by_hand(scored):
    alerted = scored[(scored["direction"] != "") & scored["driver"].isin(["unit_price", "value_per_kg"])]
    assert len(alerted) > 50 and set(alerted["direction"]) == {"over", "under"}
    figure = r"(-?[\d,]+(?:\.\d+)?)"
    pattern = re.compile(rf"^(?:unit price|value per kg) {figure} (.+?) is {figure}x the median of [\d,]+ peer lines "
                         rf"\(.+\): Q1 {figure}, median {figure}, Q3 {figure}, (upper|lower) fence {figure} \2"
                         rf"(?: per kg)?; (?:{figure}x the upper fence|the lower fence is {figure}x the price) "
                         rf"\({figure} IQRs (?:above Q3|below Q1) on log prices\); about {figure} ")
    for text in alerted["price_reason"]:
        match = pattern.match(text)
        assert match, text
        price, _, times_median, q1, median, q3, side, fence, over, under, _, _ = match.groups()
        price, times_median, q1, median, q3, fence = map(_value, (price, times_median, q1, median, q3, fence))
        # figures of four significant digits, multiples of three: the sentence checks itself within rounding
        assert price / median == pytest.approx(times_median, rel=6e-3), text
        assert q1 <= median <= q3, text
        log_iqr = max(np.log(q3 / q1), 0.05)
        expected_fence = q3 * np.exp(1.5 * log_iqr) if side == "upper" else q1 / np.exp(1.5 * log_iqr)
        assert fence == pytest.approx(expected_fence, rel=3e-3), text
        multiple = price / fence if side == "upper" else fence / price
        assert multiple == pytest.approx(_value(over or under), rel=6e-3), text
        assert multiple > 1, text


def test_the_report_explains_its_terms_and_names_typologies_in_words(scored_run):
    from tbml.report import write_report

    html = write_report(scored_run).read_text(encoding="utf-8")
    assert 'id="glossary"' in html and "IQR on log prices" in html and "mirror gap" in html
    visible = re.sub(r"<[^>]+>", " ", html.split("<body", 1)[1])
    for code in ("unusual_profile", "over_invoicing", "third_party_payment", "paid_more_than_once", "USD/"):
        assert code not in visible, code
