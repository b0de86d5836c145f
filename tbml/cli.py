"""The ``tbml`` command line: thin wrappers over ``tbml.api``. Run ``tbml COMMAND --help`` for each."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextlib import contextmanager

import click

import tbml
from tbml.errors import TBMLError
from tbml.schema import TYPOLOGIES
from tbml.wording import typology_name  # plain Python: no pandas or numpy to wait for

# Commands import what they need when they run: `tbml --help` must not wait for pandas, scikit-learn,
# numba and MLflow to load.


class _Group(click.Group):
    """Turns a user's mistake (a ``TBMLError``) into one line on stderr and exit 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TBMLError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tbml.__version__, prog_name="tbml")
def cli():
    """tbml: find trade-based money laundering in trade invoices and the payments behind them."""


def _read_option(name: str):
    """A click callback checking the read option ``name`` as the library would, so a bad value is one line
    naming the option (exit 2). "\\t" or "tab" give a tab delimiter, as a shell makes typing one awkward."""

    def check(ctx, param, value):
        if value is None:
            return None
        if name == "delimiter" and value in ("\\t", "tab", "TAB"):
            value = "\t"
        from tbml.mapping import read_option_problem

        problem = read_option_problem(name, value)
        if problem:
            raise click.BadParameter(f"{value!r} {problem}")
        return value

    return check


# Each file has its own read options: --encoding etc. apply to the invoices only, --transfers-encoding etc.
# to the transfers; a mapping's read section sets them for its file.
_read_options = [
    opt
    for prefix, whose in (("", "the invoices"), ("transfers-", "the transfers"))
    for opt in (
        click.option(f"--{prefix}encoding", default=None, callback=_read_option("encoding"),
                     help=f"Encoding of {whose} (default utf-8, or the mapping's; a byte-order mark wins)."),
        click.option(f"--{prefix}delimiter", default=None, callback=_read_option("delimiter"),
                     help=f"CSV delimiter of {whose}, one character (default: guessed from the header)."),
        click.option(f"--{prefix}decimal", type=click.Choice([".", ","]), default=None,
                     help=f"Decimal mark of {whose}' numbers (default: told by the numbers themselves)."),
        click.option(f"--{prefix}date-format", default=None, callback=_read_option("date_format"),
                     help=f"Dates of {whose} as a strftime pattern such as %d/%m/%Y (default ISO 8601)."),
    )
]


def read_options(func):
    for option in reversed(_read_options):
        func = option(func)
    return func


_inputs = [
    click.argument("invoices", type=click.Path(dir_okay=False)),
    click.option("--transfers", type=click.Path(dir_okay=False), help="Transfers (wires, LCs, ...) paying the invoices."),
    click.option("--mapping", type=click.Path(dir_okay=False), help="Column mapping YAML for the invoices."),
    click.option("--transfers-mapping", type=click.Path(dir_okay=False), help="Column mapping YAML for the transfers."),
    click.option("--config", type=click.Path(dir_okay=False), help="Config YAML (tbml init writes an editable copy of the defaults)."),
]


def _input_options(func):
    for option in reversed(_inputs):
        func = option(func)
    return func


@cli.command()
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--invoices", "n_invoices", type=click.IntRange(min=100), default=100_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same data.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="Another file from the same world (traders, products) as --seed and --invoices; 0 is the seed's own.")
@click.option("--laundering-rate", type=click.FloatRange(0, 0.5), default=0.02, show_default=True,
              help="Injected laundering cases per invoice, spread over the typologies.")
@click.option("--typology", "typologies", type=click.Choice(TYPOLOGIES), multiple=True,
              help="Inject only these typologies (repeatable; default all).")
@click.option("--mirror-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of shipments that also get the exporting side's declaration (mirror data).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--world", "world", multiple=True, metavar="KEY=VALUE",
              help="Change a knob of the generated world (repeatable): chapter_spread, high_risk_weight, ref_share, "
                   "split_share, parent_share, cash_share. Measures tbml on worlds its defaults never saw.")
@click.option("--declarants", type=click.Choice(["none", "listed", "fraud"]), default="none", show_default=True,
              help="Add declarant_id and customs_office; 'fraud' also labels lines misdeclared by who declared "
                   "them and where, not by price.")
def generate(out_dir, n_invoices, seed, sample, laundering_rate, typologies, mirror_share, fmt, world, declarants):
    """Write labelled synthetic invoices and transfers with injected TBML typologies.

    \b
    Example:
      tbml generate --invoices 20000 --seed 7 -o data/sample
    """
    from tbml import api

    kwargs = {"typologies": typologies} if typologies else {}
    if mirror_share:
        kwargs["mirror_share"] = mirror_share
    if sample:
        kwargs["sample"] = sample
    if world:
        from tbml.synth.habits import Habits

        try:
            kwargs["habits"] = Habits.parse(world)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if declarants != "none":
        kwargs["declarants"] = declarants
    with _progress(f"generating {n_invoices:,} invoices"):
        summary = api.generate_files(out_dir, n_invoices, seed, laundering_rate, fmt, **kwargs)
    mirrored = summary["export_declarations"]
    lines = f"{summary['n_invoices']:,} invoices" + (f" ({mirrored:,} of them export declarations)" if mirrored else "")
    click.echo(f"{lines} and {summary['n_transfers']:,} transfers "
               f"({summary['period'][0]} to {summary['period'][1]}, seed {seed})")
    for kind in ("invoices", "transfers"):
        labelled = summary[f"labelled_{kind}"]
        click.echo(f"  labelled {kind}: {sum(labelled.values()):,} "
                   f"({', '.join(f'{k} {v}' for k, v in sorted(labelled.items()))})")
    click.echo(f"wrote {summary['files']['invoices']} and {summary['files']['transfers']}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default="tbml-config")
@click.option("--force", is_flag=True, help="Overwrite files that already exist in FOLDER.")
def init(folder, force):
    """Write editable copies of tbml's defaults: config, red-flag rules, high-risk jurisdictions, example
    mappings of a customs and a bank layout, and small example files in those layouts.

    The config refers to the rules and jurisdictions beside it; pass it with --config.

    \b
    Example:
      tbml init my-settings
      tbml score declarations.csv --config my-settings/config.yaml \\
        --mapping my-settings/mappings/customs_import_declarations.yaml
    """
    from tbml.defaults import init_folder

    for path in init_folder(folder, force=force):
        click.echo(f"wrote {path}")
    click.echo(f"use it with: tbml score FILE --config {folder}/config.yaml")


def _console():
    """A rich console wrapped to the terminal's width when stdout is one; None for a pipe or a file, which
    get plain lines that scripts can read. rich is imported here: `tbml --help` does not wait for it."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


def _progress_console():
    """A rich console on stderr when stderr is a terminal, for progress bars; None for a pipe or a file."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def _progress(task: str, piped_lines: bool = False, indent: str = "  "):
    """A progress bar on stderr while ``task`` runs, when stderr is a terminal: it counts steps where the
    work numbers them ("[2/5] file" from a batch) and pulses where it cannot know how far it is, with the
    time taken. The yielded ``say(line)`` prints ``indent + line`` above the bar. Piped or redirected there
    is no bar, and ``say`` writes the line to stderr only if ``piped_lines``. stdout, where data goes, is
    never touched."""
    console = _progress_console()
    if console is None:
        yield (lambda line: click.echo(f"{indent}{line}", err=True)) if piped_lines else (lambda line: None)
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task(task, total=None, done="")

        def say(line: str) -> None:
            bar.console.print(_plain(f"{indent}{line}"))
            step = re.match(r"\s*\[(\d+)/(\d+)\]", line)
            if step:  # a step starts: those before it are done
                done, total = int(step[1]) - 1, int(step[2])
                bar.update(job, completed=done, total=total, done=f"{done}/{total} done", refresh=True)

        yield say


class _Say(logging.Handler):
    """Log lines to a ``say`` of ``_progress``."""

    def __init__(self, say):
        super().__init__()
        self.say = say

    def emit(self, record):
        self.say(self.format(record))


def _plain(text):
    """Data shown as it is: rich would read "[bold]" in a name as markup."""
    from rich.text import Text

    return Text(str(text))


def _print_alerts(alerts, console=None) -> None:
    """The alerts with their reasons: a table wrapped to the terminal on ``console``, else a line each."""
    has_status = "status" in alerts
    if console is None:
        for alert in alerts.itertuples(index=False):
            name = alert.invoice_id if alert.item == "invoice" else alert.transfer_id
            status = f" [{alert.status}]" if has_status else ""
            if getattr(alert, "status", "") == "resolved":
                click.echo(f"  {name}{status}: {alert.reasons}")
                continue
            click.echo(f"  #{alert.rank} {name} risk {alert.risk:.0f} ({typology_name(alert.suspected_typology)})"
                       f"{status}: {alert.reasons}")
        return
    from rich.table import Table

    table = Table(show_lines=True)
    for name, justify in (("#", "right"), ("risk", "right"), ("item", "left"), ("typology", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    table.add_column("reasons", overflow="fold", min_width=min(60, console.width // 2))  # the part to read
    if has_status:
        table.add_column("status")
    for alert in alerts.itertuples(index=False):
        name = alert.invoice_id if alert.item == "invoice" else alert.transfer_id
        reasons = "\n".join(f"- {r.strip()}" for r in str(alert.reasons).split(" | ") if r.strip())
        row = [alert.rank, f"{alert.risk:.0f}", f"{alert.item}\n{name}", typology_name(alert.suspected_typology),
               reasons] + ([alert.status] if has_status else [])
        table.add_row(*[_plain(x) for x in row])
    console.print(table)


def _print_frame(frame, console=None) -> None:
    """A small frame (models, versions) as a table wrapped to the terminal on ``console``, else as text."""
    if console is None:
        click.echo(frame.to_string(index=False))
        return
    from rich.table import Table

    table = Table()
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_plain("" if v is None else v) for v in row])
    console.print(table)


def _print_notes(stats: dict) -> None:
    """What a file lacked or held that tbml could not use: on stderr, beside the stage times."""
    for note in stats.get("notes", []):
        click.echo(f"  note: {note}", err=True)


@cli.command()
@_input_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="tbml-validate",
              show_default=True, help="Where quarantined rows and the manifest go.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) if any row is quarantined.")
@read_options
def validate(invoices, transfers, mapping, transfers_mapping, config, out_dir, strict, **read):
    """Check files against the data contract: count accepted and quarantined rows, say why.

    Quarantined rows are written as they were read, with their row number and reasons, to
    OUT/quarantine_invoices.csv (and _transfers.csv); OUT/manifest.json accounts for every row.

    \b
    Example:
      tbml validate declarations.csv --mapping customs_import_declarations
      tbml validate invoices.csv --transfers transfers.csv -o checks/
    """
    from tbml import api

    result = api.validate_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                config=config, out_dir=out_dir, strict=strict, **read)
    for loaded in result.results:
        s = loaded.stats
        click.echo(f"{s['path']}: {s['rows_in']:,} rows in, {s['rows_accepted']:,} accepted, "
                   f"{s['rows_quarantined']:,} quarantined")
        for reason, count in s["quarantine_reasons"].items():
            click.echo(f"  {reason:<24}{count:>10,}")
        repairs = {k: v for k, v in s["repairs"].items() if isinstance(v, int) and v}
        if repairs:
            click.echo("  repaired: " + ", ".join(f"{k} {v:,}" for k, v in repairs.items()))
        _print_notes(s)
    for name, path in result.outputs.items():
        click.echo(f"{name}: {path}")


def _with_selection(config, budget, explore):
    """The config with --budget and --explore applied (each a fusion setting), checked as the config is."""
    if budget is None and explore is None:
        return config
    import dataclasses

    from tbml.budget import parse_budget
    from tbml.config import load_config
    from tbml.errors import ConfigError

    loaded = load_config(config)
    try:
        parse_budget(budget)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).replace("fusion.budget: ", ""), param_hint="--budget") from None
    fusion = dataclasses.replace(loaded.fusion, **({"budget": budget} if budget is not None else {}),
                                 **({"explore_share": explore} if explore is not None else {}))
    return dataclasses.replace(loaded, fusion=fusion)


def _score_options(func):
    func = click.option("--reference-prices", type=click.Path(dir_okay=False),
                        help="External unit values (CSV/Parquet) for goods your file has too few lines of.")(func)
    return _input_options(read_options(func))


@cli.command()
@_score_options
@click.option("--model", default=None, help="A trained model: models:/tbml@champion, models:/tbml/3, or a "
              "saved folder. Without it the chain is fitted on the input itself.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="tbml-out", show_default=True)
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Alerts to print.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) if any row is quarantined.")
@click.option("--store", type=click.Path(dir_okay=False), default=None,
              help="A case store (DuckDB file, created if absent): judge the files with the history it holds, "
              "re-judge earlier alerts, and keep the rows, the run and the alerts' changes.")
@click.option("--budget", default=None, metavar="N|P%",
              help="How many alerts: a number (500) or a share of the items (1%). Default: fusion.budget (auto: "
                   "items at risk >= 30, at most 5% of them).")
@click.option("--explore", type=click.FloatRange(0, 0.5), default=None,
              help="Share of the alerts spent on exploration (default fusion.explore_share: 0.1 with a supervised "
                   "model, else 0).")
def score(invoices, transfers, mapping, transfers_mapping, config, reference_prices, model, out_dir, top, strict,
          store, budget, explore, **read):
    """Rank invoice lines and payments by laundering risk (0-100), each with its reasons.

    No trained model is needed: peer prices and trader profiles come from the files themselves. Writes
    OUT/alerts.csv and OUT/alerts.parquet (ranked), OUT/items.parquet (everything scored),
    OUT/payments.parquet (every payment and the invoice it settles), OUT/entities.csv and OUT/networks.csv
    (alerts rolled up), quarantined rows and OUT/manifest.json.

    \b
    Example:
      tbml score invoices.csv --transfers transfers.csv -o alerts/
      tbml score declarations.csv --mapping customs_import_declarations
      tbml score today.csv --transfers wires.csv --model models:/tbml@champion
      tbml score day-2026-11-27.csv --transfers wires-2026-11-27.csv --store cases.duckdb
    """
    from tbml import api

    config = _with_selection(config, budget, explore)
    with _progress(f"scoring {click.format_filename(invoices, shorten=True)}", piped_lines=True) as say:
        result = api.score_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                 config=config, out_dir=out_dir, strict=strict, reference_prices=reference_prices,
                                 model=model, store=store, progress=say, **read)
    m = result.manifest
    if m.get("store", {}).get("already_in_store") and "alerts" not in m:
        runs = ", ".join(sorted(set(m["store"]["already_in_store"].values())))
        click.echo(f"already in the store (run {runs}): nothing added, nothing scored, no output written")
        return
    for s in m["inputs"]:
        click.echo(f"{s['path']}: {s['rows_in']:,} rows in, {s['rows_accepted']:,} scored, "
                   f"{s['rows_quarantined']:,} quarantined")
        _print_notes(s)
    chosen = m["budget"]["budget"]
    explored = m["budget"]["explored"]
    how = (f"at risk >= {m['alert_threshold']:g} (at most {100 * m['budget']['max_alert_share']:g}% of the items)"
           if str(chosen) == "auto" else f"by the budget {chosen}")
    click.echo(f"{m['alerts']:,} alerts {how}" + (f", {explored:,} of them explored" if explored else "")
               + f"; {len(result.entities):,} entities and {len(result.networks):,} networks involved")
    if "store" in m:
        changes = m["store"].get("alert_changes", {})
        click.echo(f"store {m['store']['path']}: run {m['store']['run_id']}; "
                   f"{m['store']['history_rows'].get('invoices', 0):,} earlier invoice lines judged again; alerts "
                   + (", ".join(f"{k} {v:,}" for k, v in changes.items()) or "unchanged"))
        for kind, known in m["store"]["already_in_store"].items():
            click.echo(f"  {kind}: already in the store (run {known}), not added again")
    _print_alerts(result.alerts.head(top), _console())
    for name, path in result.outputs.items():
        click.echo(f"{name}: {path}")


@cli.command()
@_score_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--test", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A later labelled invoices file: train on INVOICES (with labels), measure on this one.")
@click.option("--test-transfers", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The later period's transfers, with --test.")
@click.option("--split-date", default=None, metavar="YYYY-MM-DD",
              help="Train on the lines before this date, measure on the rest.")
def evaluate(invoices, transfers, mapping, transfers_mapping, config, reference_prices, as_json, test,
             test_transfers, split_date, **read):
    """Measure tbml against labelled data, side by side with the plain IQR price filter and an isolation
    forest on the raw columns: precision and recall at 0.5/1/2/5% budgets, PR-AUC, ROC-AUC,
    value-weighted recall, and PR-AUC per typology. The files need is_laundering and typology columns.

    With --test (or --split-date), tbml learns from the earlier files' labels and is measured on the later
    ones: unsupervised, supervised and fused tbml beside a plain gradient-boosting classifier on the raw
    columns and the IQR filter.

    \b
    Example:
      tbml generate --invoices 200000 --seed 1 -o data/eval
      tbml evaluate data/eval/invoices.csv --transfers data/eval/transfers.csv
      tbml evaluate data/eval/invoices.csv --transfers data/eval/transfers.csv --split-date 2023-07-01
    """
    from tbml import api
    from tbml.evaluate import table

    if test_transfers and not test:
        raise click.UsageError("--test-transfers needs --test")
    if split_date:
        import pandas as pd
        try:
            pd.Timestamp(split_date)
        except ValueError:
            raise click.BadParameter(f"{split_date!r} is not a date (YYYY-MM-DD)", param_hint="--split-date") from None
    # piped, only training on earlier files says its stages (as before); on a terminal every run draws a bar
    with _progress("training on the earlier files, then testing" if test or split_date else "scoring, then the baselines",
                   piped_lines=bool(test or split_date)) as say:
        result = api.evaluate_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                                    config=config, reference_prices=reference_prices, test=test,
                                    test_transfers=test_transfers, split_date=split_date, progress=say, **read)
    click.echo(json.dumps(result) if as_json else table(result))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Where the HTML goes (default RUN_DIR/report.html).")
@click.option("--top", type=click.IntRange(min=1), default=25, show_default=True,
              help="Alerts shown in full, each with its price chart.")
@click.option("--title", default=None, help="Page title (default: the folder's name).")
def report(run_dir, out, top, title):
    """Write one self-contained HTML report of a scored run: row accounting, alerts by typology and
    corridor, the top alerts with their reasons and price charts, entities, networks, circular trades.

    It needs no network to open; every text from the data is escaped.

    \b
    Example:
      tbml score invoices.csv --transfers transfers.csv -o alerts/
      tbml report alerts/
    """
    from tbml import report as report_module

    path = report_module.write_report(run_dir, out=out, top=top, title=title)
    click.echo(f"report: {path} ({path.stat().st_size / 1024:,.0f} KiB)")


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Score every file again, even those unchanged since their last run.")
def batch(job, force):
    """Score every input of a YAML batch job; a failing file is reported and the others go on.

    Each file's outputs and HTML report go to OUTPUT/runs/RUN_ID/, swapped in whole when finished; files
    unchanged since their last run (same bytes, config, model version) are skipped. OUTPUT/report.html
    links them all; OUTPUT/batch.log keeps the log. Exit 1, with the reasons, if any file failed.

    \b
    Example:
      tbml batch nightly.yaml
      tbml batch nightly.yaml --force
    """
    from tbml import batch as batch_module

    with _progress(f"batch {click.format_filename(job, shorten=True)}", piped_lines=True, indent="") as say:
        console = _Say(say)
        console.setFormatter(logging.Formatter("%(message)s"))
        batch_module.LOG.addHandler(console)
        try:
            result = batch_module.run_batch(job, force=force)
        finally:
            batch_module.LOG.removeHandler(console)
    for f in result.files:
        click.echo(f"{f.status:<11} {f.run_id}: " + (f.reason if f.status == "failed" else
                   f"{f.rows_in:,} rows in, {f.rows_quarantined:,} quarantined, {f.alerts:,} alerts"))
    click.echo(f"report: {result.outputs['report']}")
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} of {len(result.files)} input files failed; "
                                   f"first: {result.failed[0].reason}")


@cli.command()
@_input_options
@click.option("--name", default="tbml", show_default=True, help="Registered model name.")
@click.option("--alias", default="challenger", show_default=True, help="Alias the new version gets.")
@click.option("--experiment", default="tbml", show_default=True, help="MLflow experiment for the run.")
@click.option("--save", type=click.Path(file_okay=False), help="Also write the model and a model card here.")
@click.option("--no-register", is_flag=True, help="Do not log to MLflow (with --save: a local model only).")
@click.option("--data-source", default=None,
              help="What the files are, in words, for the model card and the version's description.")
@click.option("--supervised", is_flag=True,
              help="Also learn from labels (is_laundering in the files, or --labels) and fuse what they teach "
                   "with the unsupervised evidence.")
@click.option("--labels", default=None, metavar="FILE|store:PATH",
              help="Labels for --supervised: a CSV/Parquet file (id, label[, typology]), or store:cases.duckdb "
                   "for investigators' decisions (confirmed = laundering, dismissed = not).")
@read_options
def train(invoices, transfers, mapping, transfers_mapping, config, name, alias, experiment, save, no_register,
          data_source, supervised, labels, **read):
    """Fit the whole chain on reference files and register it in MLflow as a new version.

    The run records the config, data fingerprints (sha256, rows, dates), metrics (evaluation figures
    when the files are labelled) and the reference tables. Tracking: MLFLOW_TRACKING_URI, else
    mlflow.db in this folder.

    \b
    Example:
      tbml train reference/invoices.csv --transfers reference/transfers.csv
      tbml models promote tbml 1
    """
    if no_register and not save:
        raise click.UsageError("--no-register needs --save, or the trained model would go nowhere")
    from tbml import api

    with _progress(f"training on {click.format_filename(invoices, shorten=True)}", piped_lines=True) as say:
        info = api.train_files(invoices, transfers, mapping=mapping, transfers_mapping=transfers_mapping,
                               config=config, name=name, alias=alias, experiment=experiment, save=save,
                               register=not no_register, data_source=data_source,
                               supervised=supervised or bool(labels), labels=labels, progress=say, **read)
    if "supervised" in info:
        s = info["supervised"]
        click.echo(f"learned from {s['lines']:,} labelled lines ({s['laundering']:,} laundering; {s['source']}); "
                   f"checked on the latest {s['held_out']['lines']:,} of them; unsupervised weight {s['alpha']:g}")
        for band in s["bands"]:
            click.echo(f"  risk {band['band']}: {band['lines']:,} held-out lines, {100 * band['precision']:.0f}% laundering")
    pr = info["metrics"].get("pr_auc")
    if pr is not None:
        click.echo(f"PR-AUC on the training files: {pr:.3f}")
    if save:
        click.echo(f"saved to {info['saved']} with {info['card']}; score with: tbml score FILE --model {info['saved']}")
    if not no_register:
        click.echo(f"registered {info['name']} version {info['version']} as @{info['alias']} "
                   f"(run {info['run_id']}, {info['rows']:,} invoice lines)")
        click.echo(f"score with: tbml score FILE --model models:/{info['name']}@{info['alias']}")


@cli.group()
def models():
    """Registered tbml models: list them, show one, promote a version.

    \b
    Example:
      tbml models list
      tbml models show tbml
      tbml models promote tbml 2 --alias champion
    """


@models.command("list")
def models_list():
    """Every registered model version with its aliases.

    \b
    Example:
      tbml models list
    """
    from tbml import registry

    click.echo(registry.list_models().to_string(index=False))


@models.command("show")
@click.argument("name")
def models_show(name):
    """The versions of NAME with their aliases and their runs' metrics.

    \b
    Example:
      tbml models show tbml
    """
    from tbml import registry

    _print_frame(registry.show_model(name), _console())


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="champion", show_default=True)
def models_promote(name, version, alias):
    """Point ALIAS (default champion) at VERSION of NAME.

    \b
    Example:
      tbml models promote tbml 2
    """
    from tbml import registry

    registry.promote(name, version, alias)
    click.echo(f"{name}@{alias} -> version {version}")


@cli.group("store")
def store_group():
    """The case store that `tbml score --store` keeps: what it holds.

    \b
    Example:
      tbml store info --store cases.duckdb
    """


@store_group.command("info")
@click.option("--store", "path", type=click.Path(dir_okay=False), required=True, help="The store file.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def store_info(path, as_json):
    """Runs, files, rows and their dates, alerts by status, and size on disk.

    \b
    Example:
      tbml store info --store cases.duckdb
    """
    from tbml.store import Store

    with Store.open(path, read_only=True) as store:
        info = store.info()
    if as_json:
        click.echo(json.dumps(info))
        return
    last = info["last_run"]
    click.echo(f"{info['path']}: schema {info['schema_version']}, {info['bytes'] / 1e6:,.1f} MB on disk")
    click.echo(f"  {info['runs']:,} runs, {info['files']:,} files" + (f"; last run {last['run_id']} at {last['started']}"
                                                                   if last else ""))
    for kind in ("invoices", "transfers"):
        k = info[kind]
        click.echo(f"  {kind}: {k['rows']:,} rows" + (f", {k['from']} to {k['to']}" if k["rows"] else ""))
    click.echo("  alerts: " + (", ".join(f"{status} {n:,}" for status, n in info["alerts"].items()) or "none"))


@store_group.command("prune")
@click.option("--before", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Delete rows dated before this day.")
@click.option("--store", "path", type=click.Path(dir_okay=False, exists=True), required=True, help="The store file.")
def store_prune(before, path):
    """Delete invoices, transfers and alerts dated before a day, keeping decided alerts (confirmed or
    dismissed), their history and the rows they refer to. One transaction.

    \b
    Example:
      tbml store prune --before 2025-01-01 --store cases.duckdb
    """
    from tbml.store import Store

    with Store.open(path, create=False) as store:
        removed = store.prune(before)
    click.echo(f"removed before {before.date()}: " + ", ".join(f"{n:,} {table}" for table, n in removed.items())
               + "; decided alerts and their rows kept")


@cli.group("review")
def review_group():
    """Investigators' decisions on the alerts of a case store.

    \b
    Example:
      tbml review list --store cases.duckdb --status open --limit 20
      tbml review decide A0123456789abcd dismissed --store cases.duckdb --note "known supplier" --by ana
    """


_STORE_OPTION = click.option("--store", "path", type=click.Path(dir_okay=False, exists=True), required=True,
                             help="The store file.")


@review_group.command("list")
@_STORE_OPTION
@click.option("--status", type=click.Choice(["open", "confirmed", "dismissed", "resolved"]), default=None,
              help="Only alerts of this status.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def review_list(path, status, limit):
    """Alerts riskiest first: id, status, risk, item, date, typology, and the latest decision's reviewer.

    \b
    Example:
      tbml review list --store cases.duckdb --status open --limit 20
    """
    from tbml import review

    alerts = review.list_alerts(path, status, limit)
    for a in alerts.itertuples():
        decided = f"  [{a.reviewer or 'unnamed'}: {a.note}]" if isinstance(a.note, str) else ""
        click.echo(f"{a.alert_id}  {a.status:<9} {a.risk:5.1f}  {a.item} {a.item_id}  {str(a.date)[:10]}  "
                   f"{typology_name(a.typology) if isinstance(a.typology, str) else ''}{decided}")
    click.echo(f"{len(alerts):,} alert(s)" + (f" {status}" if status else ""))


@review_group.command("decide")
@click.argument("alert_id")
@click.argument("decision", type=click.Choice(["confirmed", "dismissed"]))
@_STORE_OPTION
@click.option("--note", default=None, help="Why: kept with the decision.")
@click.option("--by", "by", default=None, help="Who decided.")
def review_decide(alert_id, decision, path, note, by):
    """Confirm or dismiss an alert. It keeps the decision when raised again; a dismissed alert reopens
    only when its risk rises 15 points or a new typology is suspected.

    \b
    Example:
      tbml review decide A0123456789abcd confirmed --store cases.duckdb --note "no such shipment" --by ana
    """
    from tbml import review

    alert = review.decide(path, alert_id, decision, note=note, by=by)
    click.echo(f"{alert_id}: {alert['status']} ({alert['item']} {alert['item_id']}, risk {alert['risk']:.0f})")


@review_group.command("export")
@_STORE_OPTION
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="The CSV to write.")
def review_export(path, out):
    """Write every decision (alert_id, invoice_id, transfer_id, decision, note, reviewer, date) as CSV.

    \b
    Example:
      tbml review export --store cases.duckdb -o decisions.csv
    """
    from tbml import review

    click.echo(f"{review.export_decisions(path, out):,} decision(s) written to {out}")


@review_group.command("import")
@click.argument("decisions", type=click.Path(dir_okay=False, exists=True))
@_STORE_OPTION
def review_import(decisions, path):
    """Take the decisions of a CSV (alert_id, or invoice_id / transfer_id; decision; note, reviewer, date
    optional). A bad row stops the import with its line and column, and nothing is written.

    \b
    Example:
      tbml review import decisions.csv --store cases.duckdb
    """
    from tbml import review

    click.echo(f"{review.import_decisions(decisions, path):,} decision(s) taken from {decisions}")


def main() -> None:
    cli(prog_name="tbml")


if __name__ == "__main__":
    sys.exit(main())
