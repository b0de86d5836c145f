"""The knobs of the generated world that a detector must not be tuned to.

``Habits()`` is the world tbml's tests and figures use. Other values draw other worlds from the same
seed, to measure tbml where its defaults were never looked at (``tbml generate --world KEY=VALUE``):

- ``chapter_spread``: how many HS chapters a trader deals in (each of 3 extra chapters with this chance);
  higher means traders' histories say less about which goods are theirs;
- ``high_risk_weight``: how much trade runs through the jurisdictions of the high-risk list, as a multiple
  of their normal weight (3 makes a world where such corridors are common and say little on their own);
- ``ref_share``: the share of honest payments whose bank reference carries the invoice number;
- ``split_share``: the share of invoices paid in two parts (deposit and balance);
- ``parent_share``: the share of payments a parent or sister company makes for the importer;
- ``cash_share``: the share of payments through cash or exchange houses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Habits:
    chapter_spread: float = 0.3
    high_risk_weight: float = 1.0
    ref_share: float = 0.75
    split_share: float = 0.15
    parent_share: float = 0.015
    cash_share: float = 0.03

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"world setting {f.name} must be a number >= 0, not {value!r}")
            if f.name != "high_risk_weight" and value > 1:
                raise ValueError(f"world setting {f.name} is a share: between 0 and 1, not {value!r}")

    @classmethod
    def parse(cls, pairs) -> Habits:
        """``Habits`` from ``["chapter_spread=0.6", ...]``; a key it does not know is an error naming the keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for pair in pairs:
            key, sep, text = str(pair).partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise ValueError(f"--world {pair!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
            try:
                values[key] = float(text)
            except ValueError:
                raise ValueError(f"--world {pair!r}: {text!r} is not a number") from None
        return cls(**values)

    def changed(self) -> dict:
        """The settings that differ from the default world."""
        base = Habits()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(base, f.name)}
