{#- One row per adjustment found after a month was closed (finance_ledger.bonus_adjustments,
    written by the pipeline's adjustment step, dagster_project/lib/finance_ledger.py): the
    line's paid amount (its frozen amount plus the deltas recorded before), the amount the data
    now gives, the delta between them, and the month it is payable in (the first open month
    after the affected one at detection). Adjustments voided by a reopen are left out.

    A table published like the other finance tables (D171, D230): the ledger is written after
    dbt builds, so the step that writes it (detection, a reopen) also puts the rows of
    `stg_finance_ledger__bonus_adjustments` into this table again, in place and in the
    ledger's own transaction (`refresh_adjustments` in finance_ledger.py). A reader never
    waits for that and never sees the table half-built. -#}

with

adjustments as (
    select * from {{ ref('stg_finance_ledger__bonus_adjustments') }}
),

final as (
    select
        cast(month_affected as date) as month_affected,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(kpi_code as {{ dbt.type_string() }}) as kpi_code,
        cast(detected_at as {{ dbt.type_timestamp() }}) as detected_at,
        cast(paid_amount as decimal(18, 2)) as paid_amount,
        cast(recomputed_amount as decimal(18, 2)) as recomputed_amount,
        cast(delta as decimal(18, 2)) as delta,
        cast(payable_month as date) as payable_month
    from adjustments
)

select * from final
