"""The functions behind the CLI, for notebooks and batch jobs: each takes paths and options, writes its
outputs atomically, and returns what it did."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import tbml
from tbml.config import Config, load_config
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
