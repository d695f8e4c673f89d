{#- One row per (valid_from, role, kpi_code): the weight of a KPI in the bonus of a role, from
    the seed default_kpi_weights, overridden by inbox files kpi_weights/*.csv.

    Override rule (decision): a role that has any row in the inbox takes all its weights from the
    inbox; the other roles keep the defaults. Mixing the two row by row would pay KPIs of the
    default scheme the company's own scheme left out. valid_to: the next valid_from of the same
    role and kpi_code (null: still valid). For month m use valid_from <= m < valid_to. A key whose
    inbox rows disagree is held back: weight null, hold_reason names the rows (D86). -#}

with

default_weights as (
    select * from {{ ref('default_kpi_weights') }}
),

inbox_weights as (
    select * from {{ ref('stg_inbox__kpi_weights') }}
),

inbox_roles as (
    select distinct role from inbox_weights
),

unioned as (
    select
        inbox_weights.valid_from,
        inbox_weights.role,
        inbox_weights.kpi_code,
        inbox_weights.weight,
        'inbox' as weight_source,
        inbox_weights.conflict_reason as hold_reason
    from inbox_weights
    union all
    select
        cast(default_weights.valid_from as date) as valid_from,
        default_weights.role,
        default_weights.kpi_code,
        cast(default_weights.weight as decimal(18, 4)) as weight,
        'default' as weight_source,
        cast(null as {{ dbt.type_string() }}) as hold_reason
    from default_weights
    left join inbox_roles
        on default_weights.role = inbox_roles.role
    where inbox_roles.role is null
),

final as (
    select
        valid_from,
        lead(valid_from) over (partition by role, kpi_code order by valid_from) as valid_to,
        role,
        kpi_code,
        weight,
        -- default (seed) or inbox
        weight_source,
        -- conflicting inbox rows: weight null, the rows named (D86)
        hold_reason
    from unioned
)

select * from final
