"""A model card: what the model was trained on, how it did, what it is for, its limits.

Every sentence about the training data comes from the training inputs themselves (their names, counts,
dates, fingerprints, labels, FX table) or from the caller's own words (``data_source``); nothing is
assumed. The same facts give the registered version its description (``training_summary``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import tbml

GENERATION_FILE = "generation.json"  # what `tbml generate` writes beside its files (tbml.api.generate_files)


def describe_training(inputs: list[dict], labelled: bool, fx_rates: str, reporting_currency: str,
                      data_source: str | None = None) -> dict:
    """The facts a card and a version description state about the training data.

    ``inputs`` are the ``stats`` of the loaded files (``tbml.ingest.LoadResult.stats``); ``fx_rates`` the
    source of the exchange rates used; ``data_source`` the caller's words for what the files are. Without
    it, the files are called synthetic only when `tbml generate` wrote them (see ``generated_by_tbml``),
    and otherwise of unrecorded origin.
    """
    generated = [generated_by_tbml(s) for s in inputs]
    synthetic = bool(inputs) and all(g is not None for g in generated)
    if data_source is None:
        if synthetic:
            g = generated[0]
            data_source = (f"synthetic data from tbml.synth (`tbml generate`, seed {g.get('seed')}, "
                           f"laundering rate {g.get('laundering_rate')})")
        else:
            data_source = "files whose origin was not recorded (say what they are with data_source=)"
    return {"data_source": data_source, "synthetic": synthetic, "labelled": bool(labelled),
            "fx_rates": fx_rates, "reporting_currency": reporting_currency,
            "fingerprint": fingerprint(inputs), "tbml_version": tbml.__version__,
            "inputs": [{k: s.get(k) for k in ("kind", "path", "sha256", "rows_in", "rows_accepted",
                                             "rows_quarantined", "date_range")} for s in inputs]}


def generated_by_tbml(stats: dict) -> dict | None:
    """The `tbml generate` summary that vouches for the file of ``stats``, or None.

    It vouches when a generation.json beside the file names a file of that name, and the file has not
    changed since: it is no newer than the summary, which is written after the files. A copied or edited
    file is not vouched for, so it is never called synthetic by mistake (only, at worst, unrecorded).
    """
    path = Path(stats["path"])
    summary_path = path.parent / GENERATION_FILE
    try:
        summary = json.loads(summary_path.read_text())
        named = {Path(p).name for p in (summary.get("files") or {}).values()}
        fresh = path.stat().st_mtime <= summary_path.stat().st_mtime
    except (OSError, ValueError, AttributeError):
        return None
    return summary if path.name in named and fresh else None


def fingerprint(inputs: list[dict]) -> str:
    """One sha256 for the set of training files: of their kinds and sha256s, in a fixed order."""
    lines = sorted(f"{s['kind']}:{s['sha256']}" for s in inputs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def training_summary(training: dict, metrics: dict | None = None) -> str:
    """One paragraph: what the model was trained on, and its PR-AUC when labels measured it."""
    files = []
    for s in training["inputs"]:
        noun = "invoice lines" if s["kind"] == "invoices" else "transfers"
        dates = f", {' to '.join(s['date_range'])}" if s.get("date_range") else ""
        dropped = f" ({s['rows_quarantined']:,} quarantined)" if s.get("rows_quarantined") else ""
        files.append(f"{Path(s['path']).name}: {s['rows_accepted']:,} {noun}{dropped}{dates}")
    labels = ("labelled (is_laundering); the labels measured the model, they did not fit it" if training["labelled"]
              else "unlabelled")
    text = f"Trained on {training['data_source']}. {'; '.join(files)}. {labels.capitalize()}."
    if metrics and isinstance(metrics.get("pr_auc"), float):
        text += f" PR-AUC {metrics['pr_auc']:.3f} on the training files."
    return (text + f" Values in {training['reporting_currency']} with rates from {training['fx_rates']}. "
            f"tbml {training['tbml_version']}; training data sha256 {training['fingerprint'][:16]}...")


def model_card(title: str, training: dict, metrics: dict) -> str:
    """The card as Markdown."""
    lines = [
        f"# tbml model card: {title}",
        "",
        f"tbml {training['tbml_version']}. Scores trade invoice lines and unmatched payments 0-100 for",
        "trade-based money-laundering risk, each with its reasons (see the README: How the risk score is made).",
        "",
        "## Training data",
        "",
        training_summary(training),
        "",
        "| file | rows accepted | rows quarantined | sha256 | dates |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in training["inputs"]:
        lines.append(f"| {s['path']} | {s['rows_accepted']:,} | {s['rows_quarantined']:,} | `{s['sha256'][:16]}...` | "
                     f"{' to '.join(s.get('date_range') or [])} |")
    lines += ["", f"Training data fingerprint (sha256 of the files' sha256s): `{training['fingerprint']}`", "",
              "## Metrics", ""]
    if training["labelled"]:
        lines += ["Measured against the files' own labels, on the training files themselves: the detectors are",
                  "unsupervised and no label was used to fit, but this is not a held-out score (README",
                  "'Evaluation' gives a larger run)."]
    else:
        lines += ["The files carry no labels, so these figures describe the scores, not their accuracy;",
                  "measure that with `tbml evaluate` on labelled files."]
    lines += ["", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items()) if isinstance(v, float)]
    lines += ["", "## Intended use", "",
              "Ranking trade lines and payments for review by trained investigators (customs trade-transparency",
              "units, FIUs, trade-finance compliance). A score is a reason to look, never a finding.", "",
              "## Limits", ""]
    if training["synthetic"]:
        lines.append("- Trained on synthetic data from `tbml.synth`: its goods, prices and traders are invented.\n"
                     "  Retrain on your own reference period before use.")
    else:
        lines.append(f"- Trained on {training['data_source']}; it knows the goods, corridors and traders in these\n"
                     "  files only.")
    dates = [d for s in training["inputs"] if s["kind"] == "invoices" for d in (s.get("date_range") or [])]
    period = f" ({min(dates)} to {max(dates)})" if dates else ""  # prices come from the invoices
    lines += [f"- Reference prices describe the training period{period}; `tbml score --model` reports drift",
              "  when the goods mix, values or prices move (tbml/drift.py).",
              "- On tbml's synthetic benchmark, over-invoicing trails a plain raw-price IQR filter on import-only",
              "  files and leads with both declaration sides (README 'Evaluation').",
              f"- Values were converted to {training['reporting_currency']} with rates from {training['fx_rates']};",
              "  scores are comparable only for files converted the same way.",
              ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, training: dict, metrics: dict) -> Path:
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text(model_card(Path(folder).name, training, metrics))
    return path
