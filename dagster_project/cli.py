"""The `voronka` command line.

    voronka demo --out DIR [--scale small|medium|large] [--seed N] [--months N] [--no-defects]
    voronka run [--inbox DIR] [--warehouse FILE|URL] [--as-of TIMESTAMP] [--quiet] [--force]
    voronka load [--inbox DIR] [--warehouse FILE|URL]          (extract only, no Dagster)
    voronka summary [--warehouse FILE|URL]
    voronka forget-file PATH [--inbox DIR] [--warehouse FILE|URL]
    voronka report [--month YYYY-MM] [--language ru|en] [--warehouse FILE|URL]
    voronka close-period YYYY-MM [--by NAME] [--warehouse FILE|URL]
    voronka reopen-period YYYY-MM --reason TEXT [--by NAME] [--warehouse FILE|URL]
    voronka export --schema finance|marts --format csv|parquet|xlsx --out DIR [--decimal-comma]
    voronka validate [--warehouse FILE|URL] [--layer LAYER] [--as-of TIMESTAMP]

Exit codes (README, "Exit codes"): 0 done; 1 a step or a blocking check failed, or an
unexpected error (one line on stderr; the traceback with --debug); 2 a usage error or a refused
request (a bad option or month, a missing warehouse, closing a closed month, the warehouse held
by another command, ...), with the reason on stderr; 130 interrupted (Ctrl-C).

Commands that write the warehouse hold it alone (D81): another one refuses at once with exit 2,
naming the holder, or waits up to --wait SECONDS (VORONKA_LOCK_WAIT).

Settings not given as options come from the environment (see README: VORONKA_INBOX,
VORONKA_WAREHOUSE, VORONKA_TIMEZONE, VORONKA_AS_OF, VORONKA_MEMORY_LIMIT, VORONKA_LANGUAGE).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
WAREHOUSE_HELP = (
    "DuckDB file, or postgresql://user@host:port/dbname?sslmode=... (password from PGPASSWORD "
    "or ~/.pgpass); default data/warehouse.duckdb"
)


class UsageError(Exception):
    """A refused request: the message says what to do (exit 2)."""


def _setup_logging(verbose: bool = True) -> None:
    """Our own loggers to stderr; Dagster and dbt log through Dagster's console logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    voronka = logging.getLogger("voronka")
    voronka.handlers[:] = [handler]
    voronka.setLevel(logging.INFO if verbose else logging.WARNING)
    voronka.propagate = False


def _fmt(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def cmd_demo(args: argparse.Namespace) -> int:
    from dagster_project.lib.demo import SCALES, generate_demo

    if args.scale not in SCALES:
        print(f"unknown scale {args.scale!r}; one of: {', '.join(SCALES)}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    written = generate_demo(
        Path(args.out),
        scale=args.scale,
        seed=args.seed,
        months=args.months,
        defects=not args.no_defects,
    )
    rows = sum(entity["rows"] for entity in written.values())
    files = sum(entity["files"] for entity in written.values())
    print(
        f"Demo inbox ({args.scale}, seed {args.seed}) written to {args.out}: "
        f"{_fmt(files)} files, {_fmt(rows)} rows in {time.monotonic() - started:.1f} s"
    )
    for name, entity in written.items():
        print(f"  {name:<22} {_fmt(entity['rows']):>12} rows  {entity['files']:>4} files")
    return EXIT_OK


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings.from_env(
            inbox=getattr(args, "inbox", None),
            warehouse=getattr(args, "warehouse", None),
            as_of=getattr(args, "as_of", None),
            lock_wait=getattr(args, "wait", None),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _session(settings: Settings, command: str):
    """Hold the warehouse for a writing command (D81): WarehouseBusy names the holder."""
    return wh.session(
        settings.warehouse,
        command,
        wait_seconds=settings.lock_wait,
        memory_limit=settings.memory_limit,
    )


def _check_inbox(settings: Settings) -> bool:
    from dagster_project.lib.inbox_loader import inbox_problem

    problem = inbox_problem(settings.inbox)
    if problem:
        print(problem, file=sys.stderr)
    return problem is None


def cmd_load(args: argparse.Namespace) -> int:
    from dagster_project.lib.inbox_loader import load_inbox

    settings = _settings(args)
    if not _check_inbox(settings):
        return EXIT_USAGE
    with _session(settings, "voronka load") as session:
        session.mark_dirty()
        reports = load_inbox(settings.inbox, session.path, memory_limit=settings.memory_limit)
    for report in reports:
        print(
            f"  {report.entity:<22} {_fmt(report.rows_loaded):>12} loaded "
            f"{_fmt(report.rows_quarantined):>8} quarantined  {len(report.files)} files"
        )
    failed = [f for r in reports for f in r.failed_files]
    for file in failed:
        print(f"  not loaded: {file.source_file}: {file.message}")
    for file in (f for r in reports for f in r.ignored):
        print(f"  ignored: {file.source_file}: {file.message}")
    for file in (f for r in reports for f in r.vanished):
        print(f"  vanished: {file.source_file}: {file.message}")
    where = (
        "raw and quarantine of the PostgreSQL warehouse"  # no working copy there (D183)
        if wh.is_postgres(settings.warehouse)
        else "the working copy"
    )
    print(
        f"Loaded into {where}; readers see these rows once `voronka run` has validated "
        "them and built the marts (README, 'Reading the warehouse')."
    )
    return EXIT_OK


def cmd_forget_file(args: argparse.Namespace) -> int:
    from dagster_project.lib.inbox_loader import LoadError, forget_file

    settings = _settings(args)
    if not wh.exists(settings.warehouse) and not wh.working_path(settings.warehouse).exists():
        print(f"No warehouse at {settings.warehouse}: nothing to forget.", file=sys.stderr)
        return EXIT_USAGE
    with _session(settings, "voronka forget-file") as session:
        try:
            report = forget_file(session.path, settings.inbox, args.path)
        except LoadError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_USAGE
        session.mark_dirty()  # published by the next run, with the marts built without it
    print(f"{report.source_file}: {report.message}")
    return EXIT_OK


def print_summary(settings: Settings, outcome=None, source: Path | None = None) -> None:
    """The end-of-run report: where the warehouse is, rows per layer, quarantine, checks.

    `source`: the file to count (a run's working copy, which holds what a failed run did);
    default the published warehouse."""
    from dagster_project.lib.summary import summary_lines

    print()
    if outcome is not None:
        if outcome.publish_seconds is not None:
            print(f"Published for readers in {outcome.publish_seconds:.1f} s (D80)")
        elif not outcome.success and wh.is_postgres(settings.warehouse):
            # no working copy on PostgreSQL (D183): each table is swapped in whole when built
            print(
                "The run failed: readers see every table whole, the ones rebuilt before the "
                "failure from this run, the others from the last run that built them"
            )
        elif not outcome.success:
            print(
                "NOT published: readers keep the last successful run's warehouse; the counts "
                "below are the working copy's"
            )
    for line in summary_lines(settings.warehouse, settings.business_timezone, source=source):
        print(line)
    if outcome is not None:
        passed = sum(1 for c in outcome.checks if c.passed)
        failed = [c for c in outcome.checks if not c.passed]
        print(
            f"Checks: {passed} passed, {len(failed)} failed "
            f"({len(outcome.blocking_failures)} blocking)"
        )
        for check in failed:
            print(f"  FAILED [{check.severity}] {check.asset}: {check.name}")
        if outcome.failed_steps:
            print(f"Failed steps: {', '.join(outcome.failed_steps)}")
        if outcome.skipped_steps:
            print(f"Skipped steps: {', '.join(outcome.skipped_steps)}")
        print(f"Run {'succeeded' if outcome.success else 'FAILED'} in {outcome.seconds:.1f} s")
    _print_validation(settings, outcome)


def _print_validation(settings: Settings, outcome=None) -> None:
    """The Great Expectations part of the summary: failed suites and the report's link."""
    from dagster_project.lib import validation_report

    rows = validation_report.load_rows(settings.warehouse)
    if not rows:
        return
    page = validation_report.report_path(settings.warehouse)
    if outcome is None or not page.exists():  # a run renders it when it ends (D331)
        page = validation_report.write_report(settings.warehouse, rows)
    t = validation_report.totals(rows)
    share = ""
    if outcome is not None and outcome.seconds:
        share = f", {100 * outcome.validation_seconds / outcome.seconds:.0f} % of the run"
    print(
        f"Data quality (Great Expectations): {t['suites']} suites, {t['failed_error']} with "
        f"errors, {t['failed_warn']} with warnings, {t['skipped']} skipped; "
        f"{t['seconds']:.1f} s of validation{share}"
    )
    for row in rows:
        for failure in row.failures:
            target = failure.get("column") or failure.get("query") or "table"
            count = failure.get("unexpected_count")
            what = f"{_fmt(count)} unexpected" if count is not None else "failed"
            severity, type_ = failure.get("severity"), failure.get("type")
            print(f"  [{severity}] {row.suite}: {type_} ({target}): {what}")
    print(f"  report: {page.as_uri() if page else '-'}")


def _print_outputs(settings: Settings, since: float) -> None:
    """Where the run's report and exports are (written by the assets of defs/reports.py), when
    this run wrote them."""
    from dagster_project.lib.kpi_report import report_path

    folder = wh.local_folder(settings.warehouse)
    report, exports = report_path(settings.warehouse), folder / "exports" / "finance.xlsx"
    if report.exists() and report.stat().st_mtime >= since:
        print(f"KPI report: {report.as_uri()}")
    if exports.exists() and exports.stat().st_mtime >= since:
        print(f"Finance exports (csv with ';' and decimal comma, xlsx): {exports.parent}")


def cmd_run(args: argparse.Namespace) -> int:
    from dagster_project.lib import run_inputs
    from dagster_project.lib.sources import configured_sources

    settings = _settings(args)
    # an API or file source on: the inbox may be empty or absent (D107)
    if not configured_sources() and not _check_inbox(settings):
        return EXIT_USAGE
    from dagster_project.lib.text import parse_language

    try:  # the report's language: refused before the run, not at its last asset
        parse_language(settings.language)
    except ValueError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.as_of:
        from dagster_project.lib.timestamps import parse_timestamp

        try:
            parse_timestamp(settings.as_of, settings.business_timezone)
        except ValueError as exc:
            print(f"--as-of: {exc}", file=sys.stderr)
            return EXIT_USAGE
    with _session(settings, "voronka run") as session:
        print(f"Running the pipeline: inbox {settings.inbox} -> warehouse {settings.warehouse}")
        started = time.time()
        # before Dagster is imported: a skipped run costs the inbox's listing only (D150)
        checked = run_inputs.check(settings, session, force=args.force)
        if checked.unchanged:
            print(checked.unchanged)
            print(f"Checked in {time.time() - started:.1f} s")
            return EXIT_OK
        from dagster_project.runner import run_pipeline

        outcome = run_pipeline(
            settings,
            log_level="WARNING" if args.quiet else "INFO",
            session=session,
            debug=args.debug,
            checked=checked,
        )
        if outcome.unchanged:  # the API sources landed no new row: nothing else ran (D221)
            print(outcome.unchanged)
            published = outcome.publish_seconds or 0.0
            print(
                f"Extracted and checked in {outcome.seconds:.1f} s, published in {published:.1f} s"
            )
            return EXIT_OK
        print_summary(settings, outcome, session.path)
    _print_outputs(settings, started)
    return EXIT_OK if outcome.success else EXIT_FAILED


# ------------------------------------------------------------------------------ finance
def _ledger_session(session: wh.Session, command: str) -> None:
    """Refuse to change the ledger over unpublished changes (D80): a failed or killed run, or
    `voronka load`, left the working copy ahead of what readers see."""
    dirty = session.dirty
    if dirty:
        raise UsageError(
            f"{command} refused: the warehouse has changes not yet published, made by "
            f"`{dirty.get('command', '?')}` since {dirty.get('since', '?')} UTC (a run that "
            "failed or was killed, or `voronka load`). Run `voronka run` until it succeeds, "
            f"then {command} again."
        )


def _month_arg(text: str) -> date | None:
    from dagster_project.lib.finance_ledger import parse_month

    try:
        return parse_month(text)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return None


def _actor(args: argparse.Namespace) -> str:
    import getpass

    if args.by and args.by.strip():
        return args.by.strip()
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): say so rather than guess
        return "unknown"


def cmd_close_period(args: argparse.Namespace) -> int:
    from dagster_project.lib.finance_ledger import LedgerError, as_of_month, close_period

    month = _month_arg(args.month)
    settings = _settings(args)
    if month is None:
        return EXIT_USAGE
    wh.require_built(settings.warehouse)
    started = time.monotonic()
    with _session(settings, f"voronka close-period {args.month}") as session:
        _ledger_session(session, "close-period")
        con = session.connect()
        try:
            closed = close_period(
                con,
                month,
                closed_by=_actor(args),
                closed_at=datetime.now(UTC).replace(tzinfo=None),
                latest_month=as_of_month(con, settings.business_timezone),
            )
        except LedgerError as exc:
            print(f"close-period refused: {exc}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            con.close()
        session.mark_dirty()
        session.publish()
    total = f"{closed.bonus_amount:,.2f}".replace(",", " ")
    print(
        f"Closed {args.month}: {closed.statements} statements, {closed.lines} lines, "
        f"{total} RUB in total, frozen at {closed.closed_at:%Y-%m-%d %H:%M} UTC by "
        f"{_actor(args)} ({time.monotonic() - started:.2f} s). Later data that changes it "
        "shows in finance.bonus_adjustments."
    )
    return EXIT_OK


def cmd_reopen_period(args: argparse.Namespace) -> int:
    from dagster_project.lib.finance_ledger import LedgerError, reopen_period

    month = _month_arg(args.month)
    settings = _settings(args)
    if month is None:
        return EXIT_USAGE
    wh.require_built(settings.warehouse)
    with _session(settings, f"voronka reopen-period {args.month}") as session:
        _ledger_session(session, "reopen-period")
        con = session.connect()
        try:
            reopened = reopen_period(
                con,
                month,
                reason=args.reason,
                reopened_by=_actor(args),
                reopened_at=datetime.now(UTC).replace(tzinfo=None),
            )
        except LedgerError as exc:
            print(f"reopen-period refused: {exc}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            con.close()
        session.mark_dirty()
        session.publish()
    print(
        f"Reopened {args.month} ({args.reason.strip()}); {reopened.voided_adjustments} unpaid "
        "adjustment(s) voided. The next `voronka run` recomputes the month."
    )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from dagster_project.lib.exports import ExportError, export_schema

    settings = _settings(args)
    from dagster_project.lib.text import parse_language

    try:
        language = parse_language(settings.language)
    except ValueError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # a reader like any other: the published warehouse, read-only (D80)
    con = wh.connect_published(settings.warehouse)
    try:
        written = export_schema(
            con,
            args.schema,
            args.format,
            Path(args.out),
            decimal_comma=args.decimal_comma,
            language=language,
        )
    except ExportError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        con.close()
    for table in written:
        print(f"  {args.schema}.{table.table:<28} {_fmt(table.rows):>10} rows  {table.path}")
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not wh.exists(settings.warehouse):
        if wh.working_path(settings.warehouse).exists():
            raise UsageError(
                f"No warehouse published at {settings.warehouse} yet: the runs so far failed or "
                "were killed (what they did is in the working copy); the first `voronka run` "
                "that succeeds publishes it."
            )
        print(f"No warehouse at {settings.warehouse}: run `voronka run` first.", file=sys.stderr)
        return EXIT_USAGE
    print_summary(settings)
    dirty = wh.read_state(settings.warehouse).get("dirty")
    if dirty:
        print(
            f"Not published yet: changes of `{dirty.get('command', '?')}` since "
            f"{dirty.get('since', '?')} UTC are in the working copy only (a failed or killed "
            "run, or `voronka load`); the next successful `voronka run` publishes them."
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    import duckdb

    from dagster_project.lib.kpi_report import ReportError, write_report
    from dagster_project.lib.text import parse_language

    settings = _settings(args)
    month = None
    if args.month:
        month = _month_arg(args.month)
        if month is None:
            return EXIT_USAGE
    try:
        language = parse_language(args.language or settings.language)
    except ValueError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path, report = write_report(settings.warehouse, settings.business_timezone, language, month)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except duckdb.Error as exc:
        print(f"report: cannot read {settings.warehouse}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"KPI report of {report.month:%Y-%m} ({len(report.charts)} charts, as of "
        f"{report.as_of}): {path.as_uri()}"
    )
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from dagster_project.lib import validation_report
    from dagster_project.lib.ge_runner.gx_engine import warm_up
    from dagster_project.lib.ge_runner.reading import read_only_warehouse
    from dagster_project.lib.ge_runner.run import validate_layer
    from dagster_project.lib.ge_runner.suites import LAYERS

    settings = _settings(args)
    if args.layer and args.layer not in LAYERS:
        print(f"unknown layer {args.layer!r}; one of: {', '.join(LAYERS)}", file=sys.stderr)
        return EXIT_USAGE
    wh.require_built(settings.warehouse)
    # the working copy, as the pipeline left it (after a failed run: what failed), held so that
    # no run changes it meanwhile
    with _session(settings, "voronka validate") as session:
        warm_up().join()  # GE's start-up (seconds) is not any one suite's cost
        started = time.monotonic()
        with read_only_warehouse(session.path) as con:
            results = validate_layer(
                con, args.layer, as_of=settings.as_of, business_timezone=settings.business_timezone
            )
    validation_report.clear(settings.warehouse, args.layer)  # no stale suites on the page
    for result in results:
        validation_report.save_result(settings.warehouse, result)
    rows = validation_report.rows_from_results(results)
    for line in validation_report.format_table(rows):
        print(line)
    page = validation_report.write_report(settings.warehouse)
    t = validation_report.totals(rows)
    print(
        f"{t['suites']} suites in {time.monotonic() - started:.1f} s: {t['failed_error']} with "
        f"failed error expectations, {t['failed_warn']} with warnings only, {t['skipped']} skipped"
    )
    if page:
        print(f"Report: {page.as_uri()}")
    return EXIT_FAILED if t["failed_error"] else EXIT_OK


def _wait_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--wait",
        metavar="SECONDS",
        help="while another command holds the warehouse, wait up to SECONDS for it "
        "(default VORONKA_LOCK_WAIT, else 0: refuse at once with exit 2)",
    )


# complexity (PLR0915): a flat list of every subcommand's arguments, read top to bottom
def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    parser = argparse.ArgumentParser(
        prog="voronka", description="Voronka: a sales-department data warehouse."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    demo = add_parser("demo", help="write a realistic demo inbox")
    demo.add_argument("--out", required=True, help="inbox folder to write")
    demo.add_argument("--scale", default="small", help="tiny, small, medium or large")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--months", type=int, default=None, help="months of history")
    demo.add_argument("--no-defects", action="store_true", help="no deliberate bad rows")
    demo.set_defaults(func=cmd_demo)

    for name, func, help_ in (
        ("run", cmd_run, "load the inbox and build every layer through Dagster"),
        ("load", cmd_load, "load the inbox into raw and quarantine only"),
    ):
        command = add_parser(name, help=help_)
        command.add_argument("--inbox", help="inbox folder (default data/inbox)")
        command.add_argument("--warehouse", help=WAREHOUSE_HELP)
        if name == "run":
            command.add_argument("--as-of", help="as-of timestamp, ISO 8601 (default: latest)")
            command.add_argument("--quiet", action="store_true", help="warnings only")
            command.add_argument(
                "--force",
                action="store_true",
                help="run even when the inbox, settings and code are those of the published run "
                "(default: such a run is skipped, D150)",
            )
        _wait_option(command)
        command.set_defaults(func=func)

    summary = add_parser("summary", help="rows per layer and quarantine of a warehouse")
    summary.add_argument("--warehouse", help=WAREHOUSE_HELP)
    summary.set_defaults(func=cmd_summary)

    forget = add_parser(
        "forget-file", help="remove a file that left the inbox from raw and quarantine"
    )
    forget.add_argument("path", help="the file as the load log names it, e.g. calls/2026-01.csv")
    forget.add_argument("--inbox", help="inbox folder (default data/inbox)")
    forget.add_argument("--warehouse", help=WAREHOUSE_HELP)
    _wait_option(forget)
    forget.set_defaults(func=cmd_forget_file)

    report = add_parser("report", help="write the KPI report (one HTML page of charts)")
    report.add_argument("--month", help="the month, YYYY-MM (default: the latest full month)")
    report.add_argument("--language", help="ru or en (default VORONKA_LANGUAGE, else ru)")
    report.add_argument("--warehouse", help=WAREHOUSE_HELP)
    report.set_defaults(func=cmd_report)

    close = add_parser("close-period", help="close a month: freeze its bonus lines")
    close.add_argument("month", help="the month, YYYY-MM")
    close.add_argument("--by", help="who closes it (default: the login name)")
    close.add_argument("--warehouse", help=WAREHOUSE_HELP)
    _wait_option(close)
    close.set_defaults(func=cmd_close_period)

    reopen = add_parser("reopen-period", help="reopen a closed month (recorded)")
    reopen.add_argument("month", help="the month, YYYY-MM")
    reopen.add_argument("--reason", required=True, help="why (recorded in the period log)")
    reopen.add_argument("--by", help="who reopens it (default: the login name)")
    reopen.add_argument("--warehouse", help=WAREHOUSE_HELP)
    _wait_option(reopen)
    reopen.set_defaults(func=cmd_reopen_period)

    export = add_parser("export", help="export the finance or marts tables")
    export.add_argument("--schema", required=True, choices=["finance", "marts"])
    export.add_argument("--format", required=True, choices=["csv", "parquet", "xlsx"])
    export.add_argument("--out", required=True, help="folder to write")
    export.add_argument("--decimal-comma", action="store_true", help="CSV: 12,50 instead of 12.50")
    export.add_argument("--warehouse", help=WAREHOUSE_HELP)
    export.set_defaults(func=cmd_export)
    validate = add_parser(
        "validate", help="run the Great Expectations suites alone against the warehouse"
    )
    validate.add_argument("--warehouse", help=WAREHOUSE_HELP)
    validate.add_argument("--layer", help="raw, staging, core, marts or finance (default: all)")
    validate.add_argument("--as-of", help="as-of timestamp, ISO 8601 (default: as dbt used)")
    _wait_option(validate)
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends in one message on stderr and an exit code (the
    module docstring), a traceback only with --debug."""
    args = build_parser().parse_args(argv)
    _setup_logging(verbose=not getattr(args, "quiet", False))
    name = f"voronka {args.command}"
    try:
        return args.func(args)
    except (UsageError, wh.WarehouseError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{name}: interrupted; the published warehouse is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        print(f"{name} failed: {_explain(exc)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _explain(exc: Exception) -> str:
    """One line for an unexpected error; a DuckDB lock names its cause."""
    from dagster_project.lib.postgres import mask

    text = mask(" ".join(str(exc).split())) or type(exc).__name__
    if "Could not set lock on file" in text:
        return (
            f"{text}. Another program has this DuckDB file open for writing: a reader must open "
            "the published warehouse read-only (README, 'Reading the warehouse'); a process "
            "left by a killed run holds the working copy until it ends"
        )
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
