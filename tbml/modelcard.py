"""A model card beside a saved model: what it was trained on, how it did, what it is for, its limits."""

from __future__ import annotations

from pathlib import Path

import tbml


def write_model_card(folder: str | Path, info: dict, inputs: list[dict], metrics: dict) -> Path:
    lines = [
        f"# tbml model card: {Path(folder).name}",
        "",
        f"tbml {tbml.__version__}. Scores trade invoice lines and unmatched payments 0-100 for trade-based",
        "money-laundering risk, each with its reasons (see the README: How the risk score is made).",
        "",
        "## Training data",
        "",
        "| file | rows | sha256 | dates |",
        "| --- | --- | --- | --- |",
    ]
    for s in inputs:
        lines.append(f"| {s['path']} | {s['rows_accepted']:,} | `{s['sha256'][:16]}...` | "
                     f"{' to '.join(s.get('date_range', []))} |")
    lines += ["", "No label was used to fit: the labels only measure the model below.", "", "## Metrics", "",
              "Measured on the training files themselves (the detectors are unsupervised, so this is not a",
              "held-out score in the supervised sense; README 'Evaluation' gives a larger run).", "",
              "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items()) if isinstance(v, float)]
    lines += ["", "## Intended use", "",
              "Ranking trade lines and payments for review by trained investigators (customs trade-transparency",
              "units, FIUs, trade-finance compliance). A score is a reason to look, never a finding.", "",
              "## Limits", "",
              "- Trained on synthetic data from `tbml.synth`; retrain on your own reference period before use.",
              "- Reference prices describe the training period; `tbml score --model` reports drift when the",
              "  goods mix, values or prices move (tbml/drift.py).",
              "- Over-invoicing ranks below the plain raw-price IQR filter on synthetic data (README 'Evaluation').",
              "- Built-in exchange rates are approximate annual averages; use official rates for casework.",
              ""]
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path
