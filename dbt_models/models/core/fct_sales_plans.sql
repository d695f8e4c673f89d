{#- One row per (month, manager_id, kpi_code): the plan's base (minimum result) and norm (target).
    kpi_code names a column of marts.kpi_manager_monthly. A key whose rows disagree is held back:
    base and norm null, hold_reason names the rows (D86). -#}

with

sales_plans as (
    select * from {{ ref('stg_inbox__sales_plans') }}
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        base,
        norm,
        -- conflicting plan rows: base and norm null, the rows named (D86)
        conflict_reason as hold_reason,
        _source_file,
        _loaded_at
    from sales_plans
)

select * from final
