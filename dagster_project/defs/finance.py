"""Finance: the adjustments of closed months, found after every dbt build.

dbt builds `finance.bonus_lines` / `bonus_statements` (closed months frozen, open months
recomputed) and `intermediate.int_bonus_lines_computed` (every month as the data gives it now).
This asset compares the two for closed months and appends the differences to the ledger
(`finance_ledger.bonus_adjustments`), and puts the adjustments in force into the table
`finance.bonus_adjustments` again, in place, in the same transaction (D230). The ledger keeps
what it found, so running again records nothing new (lib/finance_ledger.py).
"""

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.finance_ledger import detect_adjustments, run_as_of


@dg.asset(
    key=["finance", "adjustment_detection"],
    group_name="finance",
    deps=[
        dg.AssetKey(["intermediate", "int_bonus_lines_computed"]),
        dg.AssetKey(["finance", "bonus_lines"]),
        # built by dbt before this step rewrites its rows (D230)
        dg.AssetKey(["finance", "bonus_adjustments"]),
    ],
    kinds={"duckdb"},
)
def finance_adjustment_detection(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Adjustments of closed months: one ledger row per closed bonus line (month, manager_id,
    kpi_code) whose recomputed amount differs from its frozen amount plus earlier adjustments;
    detected_at is the run's as-of time, payable_month the first open month after the
    affected one. Writes finance_ledger.bonus_adjustments and finance.bonus_adjustments."""
    con = warehouse.connect()
    try:
        detected_at = run_as_of(con)
        recorded = detect_adjustments(con, detected_at)
        total = con.execute(
            "select count(*) from finance_ledger.bonus_adjustments where voided_at is null"
        ).fetchone()[0]
    finally:
        con.close()
    if recorded:
        context.log.info(f"{recorded} new bonus adjustment(s) of closed months")
    return dg.MaterializeResult(
        metadata={
            "adjustments_recorded": dg.MetadataValue.int(recorded),
            "adjustments_in_force": dg.MetadataValue.int(int(total)),
            "detected_at": dg.MetadataValue.text(f"{detected_at:%Y-%m-%d %H:%M:%S} UTC"),
        }
    )


finance_assets = [finance_adjustment_detection]
