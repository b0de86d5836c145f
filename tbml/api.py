"""The functions behind the CLI, for notebooks and batch jobs: each takes paths and options, writes its
outputs atomically, and returns what it did."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import tbml
from tbml.config import Config, load_config
from tbml.detectors import PriceDeviationDetector
from tbml.features.mirror import has_both_sides, mirror_gaps
from tbml.fx import FxTable
from tbml.ingest import LoadResult, load_table
from tbml.io import write_json, write_table
from tbml.synth import generate


@dataclass
class Validation:
    results: list[LoadResult]
    manifest: dict
    outputs: dict[str, Path]


def validate_files(
    invoices: str | Path,
    transfers: str | Path | None = None,
    *,
    mapping: str | Path | None = None,
    transfers_mapping: str | Path | None = None,
    config: Config | str | Path | None = None,
    out_dir: str | Path | None = None,
    strict: bool = False,
    **read_overrides,
) -> Validation:
    """Load and check invoices (and transfers); write quarantined rows and a manifest to ``out_dir``."""
    config = config if isinstance(config, Config) else load_config(config)
    fx = FxTable.load(config.ingest.fx_rates)
    jobs = [("invoices", invoices, mapping)]
    if transfers is not None:
        jobs.append(("transfers", transfers, transfers_mapping))
    results = [load_table(path, kind, m, config, fx, strict, **read_overrides) for kind, path, m in jobs]
    outputs: dict[str, Path] = {}
    manifest = run_manifest("validate", config, fx, results)
    if out_dir is not None:
        out_dir = Path(out_dir)
        for result in results:
            outputs[f"quarantine_{result.kind}"] = write_table(
                result.quarantined, out_dir / f"quarantine_{result.kind}.csv"
            )
        manifest["outputs"] = {k: str(v) for k, v in outputs.items()}
        outputs["manifest"] = write_json(manifest, out_dir / "manifest.json")
    return Validation(results, manifest, outputs)


def run_manifest(command: str, config: Config, fx: FxTable, results: list[LoadResult]) -> dict:
    """What a run read, how every row was accounted for, and with which settings."""
    return {
        "tbml_version": tbml.__version__,
        "command": command,
        "python": platform.python_version(),
        "fx_rates": fx.source,
        "config": config.to_dict(),
        "rows_in": sum(r.stats["rows_in"] for r in results),
        "rows_accepted": sum(r.stats["rows_accepted"] for r in results),
        "rows_quarantined": sum(r.stats["rows_quarantined"] for r in results),
        "inputs": [r.stats for r in results],
    }


def generate_files(
    out_dir: str | Path, n_invoices: int, seed: int, laundering_rate: float, fmt: str = "csv", **kwargs
) -> dict:
    """Write synthetic ``invoices``, ``transfers`` and a ``generation.json`` summary to ``out_dir``."""
    data = generate(n_invoices=n_invoices, seed=seed, laundering_rate=laundering_rate, **kwargs)
    out_dir = Path(out_dir)
    suffix = "parquet" if fmt == "parquet" else "csv"
    summary = dict(data.summary)
    summary["files"] = {
        "invoices": str(write_table(data.invoices, out_dir / f"invoices.{suffix}")),
        "transfers": str(write_table(data.transfers, out_dir / f"transfers.{suffix}")),
    }
    write_json(summary, out_dir / "generation.json")
    return summary


# Columns of the line itself that an alert carries, when the input has them.
ALERT_CONTEXT = [
    "invoice_id", "source_row", "date", "importer_id", "exporter_id", "exporter_country", "importer_country",
    "hs_code", "goods_description", "quantity", "quantity_unit", "gross_weight_kg", "value", "currency",
    "reporting_value", "shipment_ref", "declaration_side", "is_laundering", "typology",
]


@dataclass
class Scoring:
    alerts: pd.DataFrame  # alerted lines, ranked, with reasons
    scores: pd.DataFrame  # every accepted line with its price comparison
    validation: Validation
    manifest: dict
    outputs: dict[str, Path]


def score_files(
    invoices: str | Path,
    transfers: str | Path | None = None,
    *,
    mapping: str | Path | None = None,
    transfers_mapping: str | Path | None = None,
    config: Config | str | Path | None = None,
    out_dir: str | Path | None = None,
    strict: bool = False,
    reference_prices: str | Path | None = None,
    **read_overrides,
) -> Scoring:
    """Validate the files, fit the price detector on the invoices themselves (peer prices from the file),
    and rank every line whose price lies beyond the fences, each with its reasons.

    Writes to ``out_dir``: alerts.csv and alerts.parquet (ranked), scores.parquet (every accepted line),
    quarantine_*.csv and manifest.json, each atomically.
    """
    config = config if isinstance(config, Config) else load_config(config)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    validation = validate_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                config=config, out_dir=None, strict=strict, **read_overrides)
    timings["load_and_validate"] = time.perf_counter() - started
    accepted = validation.results[0].accepted
    params = config.pricing.detector_params()
    params["reference_prices"] = reference_prices or params["reference_prices"]
    detector = PriceDeviationDetector(reporting_currency=config.ingest.reporting_currency, **params)

    started = time.perf_counter()
    explained = detector.fit(accepted).explain(accepted) if len(accepted) else pd.DataFrame()
    timings["price_detector"] = time.perf_counter() - started
    context = accepted[[c for c in ALERT_CONTEXT if c in accepted.columns]]
    parts = [context, explained]
    if has_both_sides(accepted):  # both declarations of a shipment: show every gap, not only the scored one
        parts.append(mirror_gaps(accepted, config.pricing.cif_fob_margin))
    scores = pd.concat(parts, axis=1)
    if len(scores):
        scores["date"] = scores["date"].dt.strftime("%Y-%m-%d")
    flagged = scores[scores.get("direction", pd.Series(dtype=str)).fillna("") != ""] if len(scores) else scores
    alerts = flagged.reindex(flagged["fence_distance"].abs().sort_values(ascending=False, kind="stable").index) \
        if len(flagged) else flagged
    alerts.insert(0, "rank", np.arange(1, len(alerts) + 1))

    manifest = run_manifest("score", config, FxTable.load(config.ingest.fx_rates), validation.results)
    # every row is accounted for: invoice lines are scored, transfers accepted (payment features come later)
    manifest["rows_scored"] = int(len(scores))
    manifest["alerts"] = int(len(alerts))
    manifest["detector"] = {"name": "PriceDeviationDetector", "min_group_size": getattr(detector, "min_group_size_", None),
                            "reference_prices": str(params["reference_prices"]) if params["reference_prices"] else None}
    manifest["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    outputs: dict[str, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        outputs["alerts_csv"] = write_table(alerts, out_dir / "alerts.csv")
        outputs["alerts_parquet"] = write_table(alerts, out_dir / "alerts.parquet")
        outputs["scores"] = write_table(scores, out_dir / "scores.parquet")
        for result in validation.results:
            outputs[f"quarantine_{result.kind}"] = write_table(result.quarantined, out_dir / f"quarantine_{result.kind}.csv")
        manifest["outputs"] = {k: str(v) for k, v in outputs.items()}
        outputs["manifest"] = write_json(manifest, out_dir / "manifest.json")
    return Scoring(alerts, scores, validation, manifest, outputs)
