"""The functions behind the CLI, for notebooks and batch jobs: each takes paths and options, writes its
outputs atomically, and returns what it did."""

from __future__ import annotations

import copy
import dataclasses
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import tbml
from tbml.config import Config, load_config
from tbml.errors import AllRowsQuarantinedError, OutputError, TBMLError
from tbml.evaluate import compare
from tbml.model import MIN_LINES_TO_JUDGE, TBMLModel
from tbml.rollup import rollup
from tbml import registry
from tbml.modelcard import write_model_card
from tbml.fx import FxTable
from tbml.ingest import LoadResult, load_table
from tbml.io import output_dir, publish, staging_dir, write_json, write_table
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
    """Load and check invoices (and transfers); write quarantined rows and a manifest to ``out_dir``.

    ``read_overrides`` (encoding, delimiter, decimal, date_format, ...) apply to the invoices; the same
    options prefixed ``transfers_`` (``transfers_encoding``, ...) to the transfers. Each replaces its
    mapping's read option for that file only.
    """
    config = config if isinstance(config, Config) else load_config(config)
    if out_dir is not None:
        output_dir(out_dir, create=False)  # a file in the way fails now, not after the work
    fx = FxTable.load(config.ingest.fx_rates)
    reads = {"invoices": {}, "transfers": {}}
    for key, value in read_overrides.items():
        kind, option = ("transfers", key[len("transfers_"):]) if key.startswith("transfers_") else ("invoices", key)
        reads[kind][option] = value
    if transfers is None and any(v is not None for v in reads["transfers"].values()):
        given = next(k for k, v in read_overrides.items() if k.startswith("transfers_") and v is not None)
        raise TBMLError(f"--{given.replace('_', '-')} was given without a transfers file (--transfers)")
    jobs = [("invoices", invoices, mapping)]
    if transfers is not None:
        jobs.append(("transfers", transfers, transfers_mapping))
    results, failed = [], None
    for kind, path, m in jobs:
        try:
            results.append(load_table(path, kind, m, config, fx, strict, **reads[kind]))
        except AllRowsQuarantinedError as exc:  # still written below, for the user to see what went wrong
            results.append(exc.result)
            failed = failed or exc
    outputs: dict[str, Path] = {}
    manifest = run_manifest("validate", config, fx, results)
    if out_dir is not None:
        tables = {f"quarantine_{r.kind}": (f"quarantine_{r.kind}.csv", r.quarantined) for r in results}
        outputs = write_run(out_dir, tables, manifest)
    if failed is not None:
        if out_dir is not None:
            where = outputs[f"quarantine_{failed.result.kind}"]
            raise AllRowsQuarantinedError(f"{failed}; the rows are in {where}", failed.result)
        raise failed
    return Validation(results, manifest, outputs)


# Every file tbml writes into a run folder. A folder whose manifest.json is tbml's holds only tbml's files
# under these names, so a new run removes those it does not write: no alerts of yesterday beside today's.
RUN_FILES = ("alerts.csv", "alerts.parquet", "alerts.jsonl", "items.parquet", "payments.parquet", "entities.csv",
             "networks.csv",
             "quarantine_invoices.csv", "quarantine_transfers.csv", "report.html", "manifest.json")


def write_run(out_dir: str | Path, tables: dict[str, tuple[str, pd.DataFrame]], manifest: dict,
              written: Callable[[], None] | None = None) -> dict[str, Path]:
    """Write ``tables`` (output key -> (file name, frame)) and ``manifest`` (given ``outputs``) to ``out_dir``.

    Everything is written to a staging folder first and moved in only when all of it is written (a full
    disk leaves the previous run as it was), the manifest last; files of an earlier tbml run that this
    run does not write are removed (see ``RUN_FILES``); files tbml did not write are never touched.
    ``written`` is called when the tables are written, before the manifest."""
    out_dir = output_dir(out_dir)
    earlier = _is_tbml_run(out_dir)
    staged = staging_dir(out_dir / "tbml-staging")  # inside out_dir: each move is a rename on one disk
    try:
        outputs = {key: out_dir / name for key, (name, _) in tables.items()}
        for name, frame in tables.values():
            write_table(frame, staged / name)
        if written is not None:
            written()
        manifest["outputs"] = {k: str(v) for k, v in outputs.items()}
        outputs["manifest"] = out_dir / "manifest.json"
        write_json(manifest, staged / "manifest.json")
        publish(staged, out_dir, stale=RUN_FILES if earlier else (), last="manifest.json")
    except OutputError as exc:  # name the file the user asked for, not its hidden staging copy
        raise OutputError(str(exc).replace(str(staged), str(out_dir))) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return outputs


def _is_tbml_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run tbml wrote: its manifest.json is a plain file and tbml's."""
    path = folder / "manifest.json"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 50 << 20:
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "tbml_version" in manifest and "command" in manifest


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


@dataclass
class Scoring:
    alerts: pd.DataFrame  # items at or above the alert threshold, ranked, with reasons
    items: pd.DataFrame  # every invoice line and unmatched transfer with its risk
    entities: pd.DataFrame
    networks: pd.DataFrame
    validation: Validation
    manifest: dict
    outputs: dict[str, Path]
    # with a store: the run, holding the scored union of history and files (``store_run.scored``)
    store_run: object | None = None


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
    model: str | TBMLModel | None = None,
    model_info: dict | None = None,
    progress: Callable[[str], None] | None = None,
    store: str | Path | None = None,
    **read_overrides,
) -> Scoring:
    """Validate the files, score every invoice line and unmatched transfer, and roll the alerts up.

    With ``model`` (``models:/tbml@champion``, a run or a saved folder, or a loaded ``TBMLModel`` with
    ``model_info`` saying what it is) the trained chain scores the files; without one, the chain is fitted
    on the files themselves (peer prices and profiles from the file).

    Writes to ``out_dir``, each atomically: alerts.csv and alerts.parquet (ranked, with reasons),
    items.parquet (everything scored), payments.parquet (every payment and the invoice it settles), entities.csv,
    networks.csv, quarantine_*.csv, manifest.json.
    ``progress`` is called with a line as each stage finishes.

    With ``store`` (a DuckDB file, created if absent; see ``tbml.store``) the files are judged together
    with the stored rows of the last ``lookback_days(config)`` days, earlier alerts are re-judged, and the
    new rows, the run and the alerts' changes are stored in one transaction. Alerts then carry
    ``alert_id`` and ``status`` (new, raised, re-raised, changed, resolved). Files whose content is
    already in the store add nothing: when every file is, nothing is scored or written and
    ``manifest["store"]["already_in_store"]`` names the run that took them.
    """
    if isinstance(store, (str, Path)):
        from tbml.store import Store

        with Store.open(store) as opened:  # the lock is taken first: a second writer fails before any work
            return score_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                               config=config, out_dir=out_dir, strict=strict, reference_prices=reference_prices,
                               model=model, model_info=model_info, progress=progress, store=opened,
                               **read_overrides)
    started_at = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")  # ISO 8601, for the report
    config = config if isinstance(config, Config) else load_config(config)
    if reference_prices:
        config = dataclasses.replace(config, pricing=dataclasses.replace(config.pricing,
                                                                         reference_prices=str(reference_prices)))
    if out_dir is not None:
        output_dir(out_dir, create=False)  # a file in the way fails now, not after scoring
    say = progress or (lambda line: None)
    timings: dict[str, float] = {}

    def stage(name, started):
        timings[name] = round(time.perf_counter() - started, 3)
        say(f"{name}: {timings[name]:.1f} s")

    started = time.perf_counter()
    validation = validate_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                config=config, out_dir=None, strict=strict, **read_overrides)
    stage("load and validate", started)
    accepted = validation.results[0].accepted
    accepted_transfers = validation.results[1].accepted if len(validation.results) > 1 else None
    if accepted_transfers is not None:
        accepted_transfers = mark_rejected_invoices(accepted_transfers, validation.results[0].rejected_keys)
    if accepted.empty:
        raise TBMLError(f"{invoices}: no invoice line passed validation; see the quarantine file")
    history = None
    if store is not None:
        started = time.perf_counter()
        from tbml.store import with_history

        history = with_history(store, config, validation, accepted, accepted_transfers)
        if history.already_in_store:
            manifest = {**validation.manifest, "command": "score", "store": history.summary()}
            empty = pd.DataFrame()
            return Scoring(empty, empty, empty, empty, validation, manifest, {})
        accepted, accepted_transfers = history.invoices, history.transfers
        stage("read the store", started)
    started = time.perf_counter()
    if model is not None:
        if isinstance(model, TBMLModel):
            trained, model_info = model, model_info or {"uri": "a model loaded in Python"}
        else:
            model_info = registry.describe(model)
            trained = registry.load(model)
        stage("load model", started)
        started = time.perf_counter()
        # how many alerts, and how many explored, is the team's choice today, not the trainer's
        trained = copy.copy(trained)
        trained.config = dataclasses.replace(trained.config, fusion=dataclasses.replace(
            trained.config.fusion, budget=config.fusion.budget, max_alert_share=config.fusion.max_alert_share,
            explore_share=config.fusion.explore_share, alert_threshold=config.fusion.alert_threshold))
        scored = trained.score(accepted, accepted_transfers)
        drifted = trained.drift(scored)
        if drifted["drift"]:
            say("warning: drift from the training data: " + "; ".join(drifted["reasons"]))
        stage("score", started)
    else:
        scored = TBMLModel(config).fit_score(accepted, accepted_transfers)
        stage("fit and score", started)
    started = time.perf_counter()
    items = scored.items
    alerts = scored.alerts()
    if history is not None:  # this run's items and alerts: the new rows, and earlier ones judged anew
        items, alerts = history.rejudge(items, config)
    # open alerts roll up (a resolved one is decided); each of them gains its network
    rolled = rollup(alerts[alerts["status"] != "resolved"] if history is not None else alerts, items)
    alerts = alerts.assign(network=rolled.alerts["network"].reindex(alerts.index))
    entities, networks = rolled.entities, rolled.networks
    stage("roll up", started)

    manifest = {**validation.manifest, "command": "score", "started_at": started_at}
    manifest["rows_scored"] = {"invoices": int((scored.items["item"] == "invoice").sum()),
                               "transfers_unmatched": int((scored.items["item"] == "transfer").sum()),
                               "transfers_settling_invoices": int(len(accepted_transfers) - (scored.items["item"] == "transfer").sum())
                               if accepted_transfers is not None else 0}
    manifest["model"] = (model_info or {}).get("uri", model) if model is not None else "fitted on the input"
    manifest["model_info"] = model_info if model is not None else None
    manifest["drift"] = drifted if model is not None else None
    manifest["alerts"] = int(len(alerts)) if history is None else int((alerts["status"] != "resolved").sum())
    manifest["alert_threshold"] = config.fusion.alert_threshold
    manifest["budget"] = {"budget": config.fusion.budget, "max_alert_share": config.fusion.max_alert_share,
                          "explored": int((alerts.get("selected_by", pd.Series(dtype=object)) == "exploration").sum())}
    manifest["evidence_tempered"] = scored.tempered
    ranker = getattr(trained, "supervised_", None) if model is not None else None
    manifest["risk_bands"] = (ranker.bands_ if ranker is not None and ranker.bands_ else
                              _percentile_bands(scored.items["risk"].to_numpy(dtype=float)))
    if scored.tempered:
        validation.results[0].stats.setdefault("notes", []).append(
            "evidence common in this file counted for less: " + "; ".join(
                f"{name} on {100 * t['share']:.1f}% of items, at {100 * t['factor']:.0f}% of its weight"
                for name, t in scored.tempered.items()))
    manifest["rules_skipped_for_missing_columns"] = scored.skipped_rules
    manifest["seconds"] = timings
    manifest["judged"] = scored.note or "prices, profiles and red-flag rules"
    if scored.note:  # said on the console with the file's other notes, and kept in the manifest
        validation.results[0].stats.setdefault("notes", []).append(scored.note)
    if history is not None:  # rows_scored above counts the history judged with the files
        manifest["store"] = history.summary()
    outputs: dict[str, Path] = {}
    if out_dir is not None:
        started = time.perf_counter()
        tables = {"alerts_csv": ("alerts.csv", alerts_for_csv(alerts)), "alerts_parquet": ("alerts.parquet", alerts),
                  "alerts_jsonl": ("alerts.jsonl", alerts), "items": ("items.parquet", items),
                  "entities": ("entities.csv", entities), "networks": ("networks.csv", networks)}
        if scored.payments is not None:  # the report lists the payments behind each invoice's alert
            tables["payments"] = ("payments.parquet", scored.payments)
        tables |= {f"quarantine_{r.kind}": (f"quarantine_{r.kind}.csv", r.quarantined) for r in validation.results}
        # the manifest holds the stage times, the write's too: timed when the tables are written
        outputs = write_run(out_dir, tables, manifest, written=lambda: stage("write", started))
    if history is not None:  # after the outputs: a crash between them leaves the files to score again
        started = time.perf_counter()
        history.commit(manifest)
        stage("write the store", started)
    return Scoring(alerts, items, entities, networks, validation, manifest, outputs, history)


def _percentile_bands(risk: np.ndarray) -> list[dict]:
    """Without labels, what a risk means is where it ranks: the risk at the top 0.5%, 1%, 2%, 5%, 10%."""
    if not len(risk):
        return []
    return [{"top": f"{share * 100:g}%", "risk_from": round(float(np.quantile(risk, 1 - share)), 2)}
            for share in (0.005, 0.01, 0.02, 0.05, 0.10)]


# alerts.csv is read by a person in a spreadsheet: what and why first, then who, then every measurement.
CSV_LEADING_COLUMNS = ("rank", "risk", "suspected_typology", "reasons", "item", "invoice_id", "transfer_id", "date",
                       "importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id", "network")


def alerts_for_csv(alerts: pd.DataFrame) -> pd.DataFrame:
    """``alerts`` with ``CSV_LEADING_COLUMNS`` first and dates as YYYY-MM-DD (they hold no time of day);
    alerts.parquet and alerts.jsonl keep the frame as it is."""
    leading = [c for c in CSV_LEADING_COLUMNS if c in alerts.columns]
    out = alerts[leading + [c for c in alerts.columns if c not in leading]]
    dates = [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c])]
    return out.assign(**{c: out[c].dt.strftime("%Y-%m-%d") for c in dates}) if dates else out


def mark_rejected_invoices(transfers: pd.DataFrame, rejected: pd.DataFrame | None) -> pd.DataFrame:
    """``transfers`` with ``rejected_invoice`` saying, for a payment that cites a quarantined invoice row,
    which row and why: that payment is not evidence of a phantom shipment."""
    if rejected is None or rejected.empty or "invoice_ref" not in transfers:
        return transfers
    from tbml.features.reconciliation import cited_invoices, invoice_keys

    at, _ = cited_invoices(transfers["invoice_ref"], invoice_keys(rejected))
    why = ("row " + rejected["source_row"].astype(str) + ": " + rejected["reason"].astype(str)).to_numpy(dtype=object)
    out = transfers.copy()
    out["rejected_invoice"] = pd.Series(np.where(at >= 0, why[np.maximum(at, 0)], None), index=transfers.index,
                                        dtype="string")
    return out


def train_files(invoices, transfers=None, *, config=None, name: str = registry.DEFAULT_NAME,
                alias: str = "challenger", experiment: str = "tbml", mapping=None, transfers_mapping=None,
                save: str | Path | None = None, register: bool = True, data_source: str | None = None,
                supervised: bool = False, labels: str | Path | None = None, progress=None,
                **read_overrides) -> dict:
    """Fit the chain on the files and register it in MLflow: config as params, data fingerprints as tags,
    evaluation metrics when the files are labelled (score distribution otherwise), the reference tables
    as Parquet, the model card, and the model as a new version of ``name`` tagged ``alias``, described by
    its training data. With ``save``, also write the chain and the card to that folder; ``register=False``
    skips MLflow. ``data_source`` says in words what the files are (the card and the version repeat it);
    without it, tbml says only what it can tell (see ``tbml.modelcard.describe_training``).

    With ``supervised``, a ranker also learns from the labels (the files' own ``is_laundering``, or
    ``labels``: a labels file, or "store:PATH" for a case store's decisions; see ``tbml.labels``) and the
    model's risk fuses it with the unsupervised evidence (see ``tbml.supervised``)."""
    from tbml.modelcard import describe_training

    config = config if isinstance(config, Config) else load_config(config)
    validation = validate_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                config=config, **read_overrides)
    accepted = validation.results[0].accepted
    accepted_transfers = validation.results[1].accepted if len(validation.results) > 1 else None
    if accepted_transfers is not None:
        accepted_transfers = mark_rejected_invoices(accepted_transfers, validation.results[0].rejected_keys)
    label_source = "the files' own labels"
    if labels is not None:
        from tbml.labels import label_files

        accepted, accepted_transfers, label_source = label_files(accepted, accepted_transfers, labels,
                                                                 progress or (lambda line: None))
    if len(accepted) < MIN_LINES_TO_JUDGE:  # a model that learned peers from a handful of lines misjudges all
        raise TBMLError(f"{invoices}: {len(accepted):,} accepted invoice line(s) are too few to train a model "
                        f"on; give at least {MIN_LINES_TO_JUDGE}")
    started = time.perf_counter()
    model = TBMLModel(config)
    if supervised:
        if "is_laundering" not in accepted or not accepted["is_laundering"].notna().any():
            raise TBMLError(f"{invoices}: --supervised needs labels: an is_laundering column (map an inspection "
                            f"outcome onto it) or --labels FILE")
        model.fit_supervised(accepted, accepted_transfers, label_source=label_source)
        scored = model.score(accepted, accepted_transfers)
    else:
        scored = model.fit_score(accepted, accepted_transfers)
    fit_seconds = time.perf_counter() - started
    items = scored.items
    metrics = {"fit_seconds": round(fit_seconds, 3), "alert_rate": float(items["alert"].mean())}
    metrics |= {f"risk_p{q}": float(items["risk"].quantile(q / 100)) for q in (50, 90, 99)}
    evaluation = None
    if supervised:
        ranker = model.supervised_
        metrics |= {"supervised_alpha": ranker.alpha_, "supervised_rounds": float(ranker.rounds_),
                    "labelled_lines": float(ranker.trained_on_["lines"])}
    if "is_laundering" in items and items["is_laundering"].notna().all():
        evaluation = compare(items, accepted, accepted_transfers)
        figures = evaluation["methods"]["tbml"]
        metrics |= {k.replace("@", "_at_").replace("%", "pct"): v for k, v in figures.items()
                    if isinstance(v, float)}
    tags = {}
    for result in validation.results:
        s = result.stats
        tags |= {f"{s['kind']}_sha256": s["sha256"], f"{s['kind']}_rows": str(s["rows_accepted"]),
                 f"{s['kind']}_date_range": " to ".join(s.get("date_range", []))}
    training = describe_training([r.stats for r in validation.results], "is_laundering" in accepted,
                                 validation.manifest["fx_rates"], config.ingest.reporting_currency, data_source)
    info: dict = {"rows": int(len(accepted)), "metrics": metrics, "training": training}
    if supervised:
        info["supervised"] = {**model.supervised_.trained_on_, "held_out": model.supervised_.held_out_,
                              "bands": model.supervised_.bands_, "alpha": model.supervised_.alpha_}
    if save is not None:
        model.save(save)
        info["card"] = str(write_model_card(save, training, metrics))
        info["saved"] = str(save)
    if register:
        info |= registry.log_model(model, accepted.head(50), name=name, alias=alias, metrics=metrics,
                                   params=_flatten(config.to_dict()), tags=tags, experiment=experiment,
                                   evaluation=evaluation, training=training)
    return info


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)[:500]  # MLflow caps a param's length
    return out


def evaluate_files(invoices, transfers=None, *, config=None, test=None, test_transfers=None, split_date=None,
                   **kwargs) -> dict:
    """Score labelled files (fit on themselves) and measure tbml against both baselines on the same items.

    With ``test`` (and ``test_transfers``), or ``split_date`` (the files' lines before it train, the rest
    test): tbml is trained on the earlier files with their labels and scores the later ones, and the
    unsupervised, supervised and fused risks are measured there beside a plain gradient-boosting
    classifier on the raw columns and the IQR filter (``tbml.evaluate.compare_supervised``)."""
    if test is not None or split_date is not None:
        return _evaluate_later(invoices, transfers, test, test_transfers, split_date, config, **kwargs)
    result = score_files(invoices, transfers, config=config, **kwargs)
    if "is_laundering" not in result.items:
        raise TBMLError(f"{invoices}: no is_laundering column: evaluation needs labelled data")
    transfers_accepted = result.validation.results[1].accepted if len(result.validation.results) > 1 else None
    return compare(result.items, result.validation.results[0].accepted, transfers_accepted)


def _evaluate_later(invoices, transfers, test, test_transfers, split_date, config, progress=None, **kwargs) -> dict:
    from tbml.evaluate import compare_supervised

    say = progress or (lambda line: None)
    config = config if isinstance(config, Config) else load_config(config)
    kwargs.pop("reference_prices", None)
    train = validate_files(invoices, transfers, config=config, **kwargs)
    inv, tr = train.results[0].accepted, (train.results[1].accepted if len(train.results) > 1 else None)
    if split_date is not None:
        if test is not None:
            raise TBMLError("give either a test file or --split-date, not both")
        cut = pd.Timestamp(split_date)
        test_inv, inv = inv[inv["date"] >= cut], inv[inv["date"] < cut]
        test_tr, tr = (tr[tr["date"] >= cut], tr[tr["date"] < cut]) if tr is not None else (None, None)
        if inv.empty or test_inv.empty:
            raise TBMLError(f"{invoices}: --split-date {split_date} leaves no invoice line on one side "
                            f"(the lines run {train.results[0].stats.get('date_range', ['?', '?'])[0]} to "
                            f"{train.results[0].stats.get('date_range', ['?', '?'])[-1]})")
    else:
        later = validate_files(test, test_transfers, config=config, **kwargs)
        test_inv = later.results[0].accepted
        test_tr = later.results[1].accepted if len(later.results) > 1 else None
    for frame, name in ((inv, invoices), (test_inv, test if test is not None else invoices)):
        if "is_laundering" not in frame or not frame["is_laundering"].notna().any():
            raise TBMLError(f"{name}: no is_laundering labels: evaluation needs labelled data")
    if tr is not None:
        tr = mark_rejected_invoices(tr, train.results[0].rejected_keys)
    started = time.perf_counter()
    model = TBMLModel(config).fit_supervised(inv, tr, label_source="the training files' labels")
    say(f"trained on {len(inv):,} lines: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    items = model.score(test_inv, test_tr).items
    say(f"scored {len(test_inv):,} later lines: {time.perf_counter() - started:.1f} s")
    result = compare_supervised(items, test_inv, inv, test_tr)
    result["train"] = {"lines": int(len(inv)), "labelled": int(inv["is_laundering"].notna().sum()),
                       "from": str(inv["date"].min().date()), "to": str(inv["date"].max().date())}
    result["test"] = {"lines": int(len(test_inv)), "from": str(test_inv["date"].min().date()),
                      "to": str(test_inv["date"].max().date())}
    result["supervised"] = {"alpha": model.supervised_.alpha_, "rounds": model.supervised_.rounds_,
                            "bands": model.supervised_.bands_}
    return result
