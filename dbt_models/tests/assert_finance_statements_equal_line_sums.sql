{#- Every bonus statement equals the sum and count of its lines, and every manager-month with
    lines has a statement (closed months included: both are frozen together). -#}

{#- A test of several models is a Dagster asset check only on the model named here (dagster-dbt's
    `meta.dagster.ref`); without it the test was logged as an observation (D108). -#}
{{ config(meta={'dagster': {'ref': {'name': 'bonus_statements'}}}) }}

with

lines as (
    select
        month,
        manager_id,
        count(*) as lines,
        -- a held line holds the statement (D86)
        case when count(hold_reason) = 0 then sum(bonus_amount) end as bonus_amount
    from {{ ref('bonus_lines') }}
    group by 1, 2
),

statements as (
    select * from {{ ref('bonus_statements') }}
)

select
    coalesce(statements.month, lines.month) as month,
    coalesce(statements.manager_id, lines.manager_id) as manager_id,
    statements.bonus_amount as statement_amount,
    lines.bonus_amount as lines_amount,
    statements.lines as statement_lines,
    lines.lines as line_count
from statements
full outer join lines
    on statements.month = lines.month
    and statements.manager_id = lines.manager_id
where statements.bonus_amount is distinct from lines.bonus_amount
    or statements.lines is distinct from lines.lines
