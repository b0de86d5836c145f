"""Nightly batch jobs: score every file a YAML job names, isolate failures to their file, never lose a row.

    tbml batch configs/batch.yaml            # or tbml.batch.run_batch("configs/batch.yaml")

A job (see ``configs/batch.yaml``) lists inputs as paths or globs, with the transfers beside each invoices
file, a mapping, a model, an output folder and an alert budget. For each invoices file:

- the run goes to ``OUTPUT/runs/RUN_ID/``: what ``tbml score`` writes, plus ``report.html``. It is written
  in a staging folder and swapped in whole (``tbml.io.replace_dir``): a crash leaves the previous run;
- a file whose inputs, config, model version and tbml version are unchanged since its last good run is
  not scored again (its fingerprint is in the run's manifest); ``force=True`` scores it anyway, and the
  outputs come out the same, since scoring is deterministic;
- a file that fails (bad input, strict mode, a bug) is logged with its reason and the others go on.

``OUTPUT/batch.json`` lists every file's outcome, ``OUTPUT/report.html`` links the file reports and ranks
the top alerts across files, and ``OUTPUT/batch.log`` keeps the log (with tracebacks of unexpected errors).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

import tbml
from tbml import registry
from tbml.api import score_files
from tbml.config import load_config
from tbml.defaults import resolve
from tbml.errors import ConfigError, TBMLError
from tbml.charts import bar_chart
from tbml.io import (output_dir, read_yaml, recover_dir, replace_dir, sha256_file, staging_dir, write_atomic,
                     write_json)
from tbml.report import REPORT_NAME, render, write_report
from tbml.wording import typology_name

LOG = logging.getLogger("tbml.batch")
_KEYS = {"name", "base_dir", "inputs", "output", "model", "config", "alert_budget", "strict", "read", "store"}
_INPUT_KEYS = {"invoices", "transfers", "mapping", "transfers_mapping"}
_READ_KEYS = {"encoding", "delimiter", "date_format"}
_INDEX_COLUMNS = ["rank", "item", "invoice_id", "transfer_id", "risk", "suspected_typology", "reasons"]


@dataclass(frozen=True)
class BatchInput:
    invoices: str  # a path or a glob, relative to the job's base_dir
    transfers: str | None = None  # a path; {parent}, {stem} and {name} stand for the invoices file's
    mapping: str | None = None
    transfers_mapping: str | None = None


@dataclass(frozen=True)
class BatchJob:
    name: str
    inputs: tuple[BatchInput, ...]
    output: Path
    base_dir: Path
    model: str | None = None
    config: str | None = None
    alert_budget: int = 25
    strict: bool = False
    read: dict = field(default_factory=dict)
    store: Path | None = None  # a case store: files are judged against it, earliest first


@dataclass
class FileOutcome:
    run_id: str
    invoices: str
    transfers: str | None
    status: str  # scored | up to date | failed
    reason: str = ""
    rows_in: int = 0
    rows_quarantined: int = 0
    alerts: int = 0
    top_risk: float | None = None
    report: str | None = None


@dataclass
class BatchResult:
    job: BatchJob
    files: list[FileOutcome]
    outputs: dict[str, Path]

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "failed"]


def load_job(path: str | Path) -> BatchJob:
    """The job in the YAML at ``path``; relative paths in it are relative to ``base_dir``, itself relative
    to the YAML's folder (default: that folder)."""
    path = Path(path)
    data = read_yaml(path, ConfigError, "batch job")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a batch job is a mapping of keys (name, inputs, output, ...)")
    _known(path, data, _KEYS, "")
    for key in ("inputs", "output"):
        if not data.get(key):
            raise ConfigError(f"{path}: '{key}' is required")
    if not isinstance(data["inputs"], list):
        raise ConfigError(f"{path}: 'inputs' must be a list of paths, globs or mappings with 'invoices'")
    inputs = []
    for i, entry in enumerate(data["inputs"]):
        entry = {"invoices": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("invoices"), str):
            raise ConfigError(f"{path}: inputs[{i}] needs 'invoices' (a path or a glob)")
        _known(path, entry, _INPUT_KEYS, f"inputs[{i}].")
        for key, value in entry.items():
            _text(path, value, f"inputs[{i}].{key}", optional=key != "invoices")
        inputs.append(BatchInput(**entry))
    if not isinstance(data.get("name"), (str, int, type(None))) or isinstance(data.get("name"), bool):
        raise ConfigError(f"{path}: 'name' must be text, not {data['name']!r}")
    for key in ("base_dir", "output", "model", "config", "store"):
        _text(path, data.get(key), key, optional=key != "output")
    budget = data.get("alert_budget", 25)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ConfigError(f"{path}: 'alert_budget' must be a whole number >= 1, not {budget!r}")
    strict = data.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{path}: 'strict' must be true or false, not {strict!r}")
    read = data.get("read") or {}
    if not isinstance(read, dict):
        raise ConfigError(f"{path}: 'read' must be a mapping of {sorted(_READ_KEYS)}")
    _known(path, read, _READ_KEYS, "read.")
    for key, value in read.items():
        _text(path, value, f"read.{key}", optional=True)
    if read.get("delimiter") is not None and len(read["delimiter"]) != 1:
        raise ConfigError(f"{path}: 'read.delimiter' must be one character, not {read['delimiter']!r}")
    base = (path.parent / str(data.get("base_dir", "."))).resolve()
    return BatchJob(name=str(data.get("name") or path.stem), inputs=tuple(inputs), output=base / str(data["output"]),
                    base_dir=base, model=_model_path(base, data.get("model")),
                    config=str(base / data["config"]) if data.get("config") else None,
                    alert_budget=budget, strict=strict, read=dict(read),
                    store=base / str(data["store"]) if data.get("store") else None)


def _text(path: Path, value, key: str, optional: bool) -> None:
    """A path, name or option of the job must be text: a list or a number there is a mistake, not a name."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: '{key}' must be text (a path or a name), not {value!r}")


def _known(path: Path, data: dict, known: set[str], prefix: str) -> None:
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(known))})")


def _model_path(base: Path, model) -> str | None:
    if not model:
        return None
    model = str(model)
    return model if ":/" in model else str(base / model)  # a URI stays; a folder is relative to base_dir


# ---- running -------------------------------------------------------------------------------------------

def run_batch(job: BatchJob | str | Path, force: bool = False) -> BatchResult:
    """Score every file of ``job``; see the module docstring. Logs to ``tbml.batch`` and to
    OUTPUT/batch.log. Raises ``TBMLError`` only when nothing can run (bad job, model, config, or another
    batch writing to the same output); a failing file is reported in the result instead."""
    job = job if isinstance(job, BatchJob) else load_job(job)
    output_dir(job.output)
    if (job.output / "runs").is_symlink():  # runs are swapped and removed there: never in a link's target
        raise TBMLError(f"{job.output / 'runs'}: is a symbolic link; tbml does not follow links for its own "
                        "folders. Remove it and run again")
    with _locked(job.output), _log_file(job.output / "batch.log"):
        started = time.perf_counter()
        LOG.info("batch %s: tbml %s, output %s%s", job.name, tbml.__version__, job.output, " (forced)" if force else "")
        config = load_config(job.config)
        model, model_info = None, None
        if job.model:
            model_info = registry.describe(job.model)
            model = registry.load(job.model)
            LOG.info("model %s", json.dumps(model_info, sort_keys=True))
        planned, outcomes = _plan(job)
        if job.store:
            planned = _in_date_order(job, planned, config)
            LOG.info("store %s: files in date order: %s", job.store, ", ".join(str(p[1]) for p in planned))
        for number, (run_id, invoices, transfers, entry) in enumerate(planned, start=1):
            LOG.info("[%d/%d] %s", number, len(planned), invoices)
            outcomes.append(_run_file(job, run_id, invoices, transfers, entry, config, model, model_info, force))
        outputs = {"summary": write_json(_summary(job, model_info, outcomes), job.output / "batch.json")}
        outputs["report"] = _write_index(job, model_info, outcomes)
        failed = sum(o.status == "failed" for o in outcomes)
        LOG.info("batch %s done in %.1f s: %d scored, %d up to date, %d failed; report %s", job.name,
                 time.perf_counter() - started, sum(o.status == "scored" for o in outcomes),
                 sum(o.status == "up to date" for o in outcomes), failed, outputs["report"])
    return BatchResult(job, outcomes, outputs)


@contextmanager
def _locked(output: Path):
    """One batch at a time per output folder: a nightly run that overruns must not race the next."""
    fd = _open_own(output / ".batch.lock", os.O_RDWR)
    with os.fdopen(fd, "r+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TBMLError(f"{output}: another tbml batch is writing here; wait for it to finish") from None
        yield


def _open_own(path: Path, mode: int) -> int:
    """Open (creating) a file of tbml's own in the output folder, never through a symbolic link: a link
    planted at the lock or the log would make the batch write to (or truncate) its target."""
    try:
        return os.open(path, mode | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise TBMLError(f"{path}: is a symbolic link; tbml does not follow links for its own files. "
                            "Remove it and run again") from None
        raise TBMLError(f"{path}: cannot open: {exc.strerror or exc}") from None


class _LogFile(logging.StreamHandler):
    """batch.log, appended to, opened without following a link (see ``_open_own``)."""

    def __init__(self, path: Path):
        super().__init__(open(_open_own(path, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8"))

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            super().close()


@contextmanager
def _log_file(path: Path):
    handler = _LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    level = LOG.level
    LOG.setLevel(logging.INFO)
    try:
        yield
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(level)
        handler.close()


def _plan(job: BatchJob) -> tuple[list[tuple[str, Path, Path | None, BatchInput]], list[FileOutcome]]:
    """Each invoices file the inputs match, with its transfers and a run id; a pattern matching no file is
    a failure of its own (a nightly file that did not arrive must not pass in silence)."""
    found, missing = [], []
    for entry in job.inputs:
        pattern = str(job.base_dir / entry.invoices)
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else (
            [Path(pattern)] if Path(pattern).exists() else [])
        if not matches:
            reason = f"{entry.invoices}: no file matches" if glob.has_magic(pattern) else f"{pattern}: file not found"
            LOG.error("%s", reason)
            missing.append(FileOutcome(_safe(entry.invoices), entry.invoices, entry.transfers, "failed", reason))
        for invoices in matches:
            transfers = None
            if entry.transfers:
                transfers = job.base_dir / entry.transfers.format(parent=invoices.parent, stem=invoices.stem,
                                                                  name=invoices.name)
            found.append((invoices, transfers, entry))
    ids = _run_ids([invoices for invoices, _, _ in found])
    return [(run_id, *item) for run_id, item in zip(ids, found)], missing


def _in_date_order(job: BatchJob, planned: list, config) -> list:
    """With a store, each file must be judged after the files it follows: by its earliest accepted date,
    then its name. A file that cannot be read goes last, and fails there with its reason."""
    from tbml.ingest import load_invoices

    def first_date(item):
        _, invoices, _, entry = item
        try:
            dates = load_invoices(invoices, mapping=_resolve(job, entry.mapping), config=config,
                                  **job.read).accepted["date"]
        except TBMLError:
            return pd.Timestamp.max, str(invoices)
        return (dates.min() if len(dates) else pd.Timestamp.max), str(invoices)

    return sorted(planned, key=first_date)


def _run_ids(paths: list[Path]) -> list[str]:
    """Readable, unique, stable names: each path below the folder all of them share, without suffix."""
    if not paths:
        return []
    common = Path(*Path(paths[0]).parent.parts[: min(len(p.parent.parts) for p in paths)])
    while any(common not in p.parents for p in paths):
        common = common.parent
    ids, seen = [], {}
    for p in paths:
        name = _safe("-".join(p.relative_to(common).with_suffix("").parts))
        seen[name] = seen.get(name, 0) + 1
        ids.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return ids


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def _run_file(job, run_id, invoices, transfers, entry, config, model, model_info, force) -> FileOutcome:
    final = job.output / "runs" / run_id
    recover_dir(final)
    outcome = FileOutcome(run_id, str(invoices), str(transfers) if transfers else None, "failed")
    staged = None
    try:
        fingerprint = _fingerprint(job, invoices, transfers, entry, config, model_info)
        previous = _manifest(final)
        if not force and previous and previous.get("batch", {}).get("fingerprint") == fingerprint:
            _fill(outcome, previous, final)
            outcome.status = "up to date"
            LOG.info("  up to date (same inputs, config and model as the last run): %s", final)
            return outcome
        staged = staging_dir(final)
        result = score_files(invoices, transfers, mapping=_resolve(job, entry.mapping),
                             transfers_mapping=_resolve(job, entry.transfers_mapping), config=config,
                             out_dir=staged, strict=job.strict, model=model, model_info=model_info,
                             progress=lambda line: LOG.info("  %s", line), store=job.store, **job.read)
        if not result.outputs and result.manifest.get("store", {}).get("already_in_store"):
            known = ", ".join(sorted(set(result.manifest["store"]["already_in_store"].values())))
            outcome.status, outcome.reason = "up to date", f"already in the store (run {known})"
            LOG.info("  up to date: already in the store %s (run %s)", job.store, known)
            return outcome
        manifest = result.manifest
        manifest["outputs"] = {k: str(final / Path(v).name) for k, v in manifest["outputs"].items()}
        manifest["outputs"]["report"] = str(final / REPORT_NAME)
        manifest["batch"] = {"job": job.name, "run_id": run_id, "fingerprint": fingerprint}
        write_json(manifest, staged / "manifest.json")
        begun = time.perf_counter()
        write_report(staged, top=job.alert_budget, title=f"tbml alerts: {job.name} / {run_id}")
        LOG.info("  report: %.1f s", time.perf_counter() - begun)
        replace_dir(staged, final)
        staged = None
        _fill(outcome, manifest, final)
        outcome.status = "scored"
        LOG.info("  scored: %s rows in, %s quarantined, %s alerts; %s", f"{outcome.rows_in:,}",
                 f"{outcome.rows_quarantined:,}", f"{outcome.alerts:,}", outcome.report)
    except TBMLError as exc:
        outcome.reason = str(exc)
        LOG.error("  failed: %s", exc)
    except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the night's other files
        outcome.reason = f"internal error {type(exc).__name__}: {exc}".replace("\n", " ")
        LOG.error("  failed: %s (traceback in batch.log)", outcome.reason)
        _log_traceback()
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return outcome


def _log_traceback() -> None:
    for handler in LOG.handlers:  # the file gets the traceback; the console keeps its one line
        if isinstance(handler, _LogFile):
            handler.emit(logging.makeLogRecord({"name": LOG.name, "levelno": logging.ERROR, "levelname": "ERROR",
                                                "msg": traceback.format_exc().rstrip()}))


def _resolve(job: BatchJob, path: str | None) -> str | None:
    return str(job.base_dir / path) if path else None


def _fingerprint(job, invoices, transfers, entry, config, model_info) -> str:
    """What decides a run's outputs: the inputs' and mappings' bytes, the config, the model version, the
    read options, the budget, strictness and tbml's version."""
    def digest(path):
        return sha256_file(path) if path and Path(path).is_file() else None

    parts = {"invoices": digest(invoices), "transfers": digest(transfers),
             "mapping": digest(_resolve(job, entry.mapping)),
             "transfers_mapping": digest(_resolve(job, entry.transfers_mapping)), "config": config.to_dict(),
             "rules": digest(resolve(config.reconciliation.rules, "rules.yaml")),
             "high_risk": digest(resolve(config.reconciliation.high_risk_jurisdictions, "high_risk_jurisdictions.yaml")),
             "model": model_info, "read": job.read, "alert_budget": job.alert_budget, "strict": job.strict,
             "tbml": tbml.__version__}
    if parts["invoices"] is None:
        raise TBMLError(f"{invoices}: file not found")
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    if path.is_symlink() or not path.is_file():  # tbml writes a plain file; anything else is not its run
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _fill(outcome: FileOutcome, manifest: dict, final: Path) -> None:
    outcome.rows_in = int(manifest.get("rows_in", 0))
    outcome.rows_quarantined = int(manifest.get("rows_quarantined", 0))
    outcome.alerts = int(manifest.get("alerts", 0))
    outcome.report = str(final / REPORT_NAME)


def _summary(job: BatchJob, model_info, outcomes: list[FileOutcome]) -> dict:
    """The batch's own manifest. No clock times in it, so the same job on the same files writes the same
    bytes (times are in batch.log and in each run's manifest)."""
    return {"job": job.name, "tbml_version": tbml.__version__, "model": model_info,
            "alert_budget": job.alert_budget, "files": [asdict(o) for o in outcomes],
            "scored": sum(o.status == "scored" for o in outcomes),
            "up_to_date": sum(o.status == "up to date" for o in outcomes),
            "failed": sum(o.status == "failed" for o in outcomes),
            "rows_in": sum(o.rows_in for o in outcomes),
            "rows_quarantined": sum(o.rows_quarantined for o in outcomes)}


def _write_index(job: BatchJob, model_info, outcomes: list[FileOutcome]) -> Path:
    """OUTPUT/report.html: every file's outcome with a link to its report, and the top alerts across files."""
    top = []
    for o in outcomes:
        if o.status == "failed":
            continue
        alerts = pd.read_parquet(job.output / "runs" / o.run_id / "alerts.parquet").head(job.alert_budget)
        alerts = alerts.reindex(columns=_INDEX_COLUMNS)  # a file without transfers has no transfer_id
        top.append(alerts.assign(run_id=o.run_id))
    top = (pd.concat(top, ignore_index=True).sort_values(["risk", "run_id", "rank"], ascending=[False, True, True],
                                                         kind="stable").head(job.alert_budget)
           if top else pd.DataFrame(columns=[*_INDEX_COLUMNS, "run_id"]))
    rows = []
    for a in top.to_dict("records"):
        rows.append({**a, "id": a["invoice_id"] if a["item"] == "invoice" else a["transfer_id"],
                     "reason": str(a.get("reasons", "")).split(" | ")[0]})
    typologies = top["suspected_typology"].value_counts() if len(top) else pd.Series(dtype=int)
    html = render("batch.html.j2", title=f"tbml batch: {job.name}", job=job, files=outcomes, top=rows,
                  model=model_info["uri"] if model_info else "fitted on each input",
                  model_info=model_info, tbml_version=tbml.__version__,
                  by_typology=bar_chart([(typology_name(k), int(v)) for k, v in typologies.items()],
                                        "top alerts by typology"),
                  failed=sum(o.status == "failed" for o in outcomes))
    return write_atomic(job.output / REPORT_NAME, lambda tmp: tmp.write_text(html, encoding="utf-8"))
