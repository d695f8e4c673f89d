"""The `voronka` command line.

    voronka demo --out DIR [--scale small|medium|large] [--seed N] [--months N] [--no-defects]
    voronka run [--inbox DIR] [--warehouse FILE] [--as-of TIMESTAMP] [--quiet]
    voronka load [--inbox DIR] [--warehouse FILE]          (extract only, no Dagster)
    voronka summary [--warehouse FILE]
    voronka validate [--warehouse FILE] [--layer LAYER] [--as-of TIMESTAMP]

Settings not given as options come from the environment (see README: VORONKA_INBOX,
VORONKA_WAREHOUSE, VORONKA_TIMEZONE, VORONKA_AS_OF, VORONKA_MEMORY_LIMIT).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from dagster_project.lib.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
    return Settings.from_env(
        inbox=getattr(args, "inbox", None),
        warehouse=getattr(args, "warehouse", None),
        as_of=getattr(args, "as_of", None),
    )


def _check_inbox(settings: Settings) -> bool:
    if settings.inbox.is_dir():
        return True
    print(
        f"The inbox folder {settings.inbox} does not exist. Write the demo inbox with "
        f"`voronka demo --out {settings.inbox}`, or point --inbox (or VORONKA_INBOX) at a folder "
        "laid out as in the README's inbox contract.",
        file=sys.stderr,
    )
    return False


def cmd_load(args: argparse.Namespace) -> int:
    from dagster_project.lib.inbox_loader import load_inbox

    settings = _settings(args)
    if not _check_inbox(settings):
        return EXIT_USAGE
    reports = load_inbox(settings.inbox, settings.warehouse, memory_limit=settings.memory_limit)
    for report in reports:
        print(
            f"  {report.entity:<22} {_fmt(report.rows_loaded):>12} loaded "
            f"{_fmt(report.rows_quarantined):>8} quarantined  {len(report.files)} files"
        )
    failed = [f for r in reports for f in r.failed_files]
    for file in failed:
        print(f"  not loaded: {file.source_file}: {file.message}")
    return EXIT_OK


def print_summary(settings: Settings, outcome=None) -> None:
    """The end-of-run report: where the warehouse is, rows per layer, quarantine, checks."""
    from dagster_project.lib.summary import LAYERS, summarize

    summary = summarize(settings.warehouse)
    print()
    print(f"Warehouse: {settings.warehouse.resolve()}")
    print("  open it with any DuckDB client; BI reads schema `marts`, finance schema `finance`")
    print("Rows per layer:")
    for layer in LAYERS:
        if layer in summary.rows_per_layer:
            print(
                f"  {layer:<13} {_fmt(summary.rows_per_layer[layer]):>14} rows in "
                f"{summary.tables_per_layer[layer]} tables"
            )
    total_q = sum(summary.quarantine.values())
    hint = " (rows with their reasons: quarantine.<entity>)" if total_q else ""
    print(f"Quarantined rows: {_fmt(total_q)}{hint}")
    for entity, count in sorted(summary.quarantine.items()):
        print(f"  {entity:<22} {_fmt(count):>10}")
    for _entity, file, reason in summary.failed_files:
        print(f"  file not loaded: {file}: {reason}")
    from dagster_project.lib.kpi_summary import format_summary, kpi_summary

    for line in format_summary(kpi_summary(settings.warehouse, settings.business_timezone)):
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


def cmd_run(args: argparse.Namespace) -> int:
    from dagster_project.runner import run_pipeline

    settings = _settings(args)
    if not _check_inbox(settings):
        return EXIT_USAGE
    if settings.as_of:
        from dagster_project.lib.timestamps import parse_timestamp

        try:
            parse_timestamp(settings.as_of, settings.business_timezone)
        except ValueError as exc:
            print(f"--as-of: {exc}", file=sys.stderr)
            return EXIT_USAGE
    print(f"Running the pipeline: inbox {settings.inbox} -> warehouse {settings.warehouse}")
    outcome = run_pipeline(settings, log_level="WARNING" if args.quiet else "INFO")
    print_summary(settings, outcome)
    return EXIT_OK if outcome.success else EXIT_FAILED


def cmd_summary(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.warehouse.exists():
        print(f"No warehouse at {settings.warehouse}: run `voronka run` first.", file=sys.stderr)
        return EXIT_USAGE
    print_summary(settings)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from dagster_project.lib import ge_runner, validation_report

    settings = _settings(args)
    if args.layer and args.layer not in ge_runner.LAYERS:
        print(
            f"unknown layer {args.layer!r}; one of: {', '.join(ge_runner.LAYERS)}", file=sys.stderr
        )
        return EXIT_USAGE
    if not settings.warehouse.exists():
        print(f"No warehouse at {settings.warehouse}: run `voronka run` first.", file=sys.stderr)
        return EXIT_USAGE
    ge_runner.warm_up().join()  # GE's start-up (seconds) is not any one suite's cost
    started = time.monotonic()
    with ge_runner.read_only_warehouse(settings.warehouse) as con:
        results = ge_runner.validate_layer(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voronka", description="Voronka: a sales-department data warehouse."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write a realistic demo inbox")
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
        command = sub.add_parser(name, help=help_)
        command.add_argument("--inbox", help="inbox folder (default data/inbox)")
        command.add_argument("--warehouse", help="DuckDB file (default data/warehouse.duckdb)")
        if name == "run":
            command.add_argument("--as-of", help="as-of timestamp, ISO 8601 (default: latest)")
            command.add_argument("--quiet", action="store_true", help="warnings only")
        command.set_defaults(func=func)

    summary = sub.add_parser("summary", help="rows per layer and quarantine of a warehouse")
    summary.add_argument("--warehouse", help="DuckDB file (default data/warehouse.duckdb)")
    summary.set_defaults(func=cmd_summary)

    validate = sub.add_parser(
        "validate", help="run the Great Expectations suites alone against the warehouse"
    )
    validate.add_argument("--warehouse", help="DuckDB file (default data/warehouse.duckdb)")
    validate.add_argument("--layer", help="raw, staging, core, marts or finance (default: all)")
    validate.add_argument("--as-of", help="as-of timestamp, ISO 8601 (default: as dbt used)")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(verbose=not getattr(args, "quiet", False))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
