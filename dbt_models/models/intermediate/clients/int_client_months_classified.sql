{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook=[
            "{{ delete_client_month_rows('months') }}",
            "{{ delete_client_month_rows('clients') }}",
        ],
        post_hook="{{ keep_client_month_inputs() }}"
    )
}}

{#- One row per client that has a won deal (by the as-of time) and KPI month, from the month before
    the client first becomes active to the as-of month: the client's state at the start and at the
    end of the month (kpi-definitions, "Clients, churn and lifecycle"). Read by kpi_churn_monthly
    (per segment) and kpi_clv_cac_monthly (churn per channel), so both use one definition.

    Active at t: a won deal with closed_at in (t - W, t], W = var churn_window_days. The start of m
    and its end are int_client_base_months_listed's month_start_at / month_end_at (the end of the as-of
    month is the as-of time). The state at a month boundary is cumulative over the client's won
    deals bucketed to the first boundary at or after their close (window functions, no range join
    over the whole history); revenue of the W days before the start is one range join bounded by W.

    Lifecycle phase at the end of m: developing (active, fewer than var developed_min_won_deals won
    deals), developed (active, at least that many), sleeping (not active, last won deal within 2W:
    closed_at >= end - 2W), lost (last won deal more than 2W ago). Potential clients (no won deal
    yet) have no row here: kpi_churn_monthly counts them from dim_clients.

    Revenue counts RUB amounts only (stg_inbox__deals defaults a missing currency to RUB; other
    currencies have no rate table yet). A table, not a view: two marts read it and it is the
    largest intermediate result (clients that ever won x months).

    Incremental per touched client (macros/client_incremental.sql, D360): the rows of the clients
    whose won deals, segment or channel changed are built again, and every client's rows from the
    month the last build's as-of fell in; the others are kept. A client built from that month on
    starts from its state at the month's start: its earlier won deals are bucketed to that
    boundary, as those before the first month are to the first month's. -#}

{%- set rebuild_from = client_months_rebuild_from() %}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

clients as (
    select * from {{ ref('dim_clients') }}
),

months as (
    select * from {{ ref('int_client_base_months_listed') }}
),
{% if rebuild_from is not none %}
touched_clients as (
    select distinct client_id
    from ({{ client_months_touched_sql() }}) as touched
),
{% endif %}

month_range as (
    select
        min(month) as first_month,
        max(month) as as_of_month,
        max(as_of_at) as as_of_at
    from months
),

boundaries as (
    -- the start of every month, plus the end of the as-of month (the as-of time)
    select
        month as boundary_month,
        month_start_at as boundary_at
    from months
    union all
    select
        months.next_month as boundary_month,
        months.month_end_at as boundary_at
    from months
    where months.is_as_of_month
),

won_deals as (
    select
        deals.deal_id,
        deals.client_id,
        deals.closed_at,
        case when deals.currency = 'RUB' then deals.amount end as revenue_amount,
        {{ business_month('deals.closed_at') }} as closed_month,
        {{ boundary_month('deals.closed_at') }} as raw_boundary_month
    from deals
    cross join month_range
    where deals.is_won
        and deals.closed_at is not null
        and deals.closed_at <= month_range.as_of_at
),

won_deals_clipped as (
    -- the first boundary built: the first month, or for a client kept up to the rebuilt month
    -- (D360) that month
    select
        won_deals.*,
        {%- if rebuild_from is none %}
        month_range.first_month as clip_month
        {%- else %}
        case
            when won_deals.client_id is null or touched_clients.client_id is not null
                then month_range.first_month
            else cast('{{ rebuild_from }}' as date)
        end as clip_month
        {%- endif %}
    from won_deals
    cross join month_range
    {%- if rebuild_from is not none %}
    left join touched_clients
        on won_deals.client_id = touched_clients.client_id
    {%- endif %}
),

won_deals_bucketed as (
    select
        won_deals_clipped.*,
        case
            when won_deals_clipped.raw_boundary_month < won_deals_clipped.clip_month
                then won_deals_clipped.clip_month
            else won_deals_clipped.raw_boundary_month
        end as boundary_month
    from won_deals_clipped
),

won_per_boundary as (
    select
        client_id,
        boundary_month,
        count(*) as won_deals,
        max(closed_at) as last_won_at
    from won_deals_bucketed
    group by 1, 2
),

won_clients as (
    select
        client_id,
        min(boundary_month) as first_boundary_month,
        min(clip_month) as clip_month,
        min(closed_at) as first_won_at
    from won_deals_bucketed
    group by 1
),

client_boundaries as (
    -- from the boundary before the first one that sees a won deal (clipped to the first month,
    -- or to the rebuilt month)
    select
        won_clients.client_id,
        won_clients.first_won_at,
        boundaries.boundary_month,
        boundaries.boundary_at
    from won_clients
    inner join boundaries
        on boundaries.boundary_month >= cast({{ dbt.dateadd('month', -1, 'won_clients.first_boundary_month') }} as date)
        and boundaries.boundary_month >= won_clients.clip_month
),

boundary_states as (
    select
        client_boundaries.client_id,
        client_boundaries.first_won_at,
        client_boundaries.boundary_month,
        client_boundaries.boundary_at,
        coalesce(sum(won_per_boundary.won_deals) over (
            partition by client_boundaries.client_id
            order by client_boundaries.boundary_month
            rows between unbounded preceding and current row
        ), 0) as won_deals_to_date,
        max(won_per_boundary.last_won_at) over (
            partition by client_boundaries.client_id
            order by client_boundaries.boundary_month
            rows between unbounded preceding and current row
        ) as last_won_at
    from client_boundaries
    left join won_per_boundary
        on client_boundaries.client_id = won_per_boundary.client_id
        and client_boundaries.boundary_month = won_per_boundary.boundary_month
),

boundary_activity as (
    select
        *,
        coalesce(
            last_won_at > {{ dbt.dateadd('day', -1 * var('churn_window_days'), 'boundary_at') }},
            false
        ) as is_active
    from boundary_states
),

month_states as (
    select
        client_id,
        first_won_at,
        boundary_month as month,
        boundary_at as month_start_at,
        won_deals_to_date as won_deals_start,
        is_active as is_active_start,
        lead(boundary_at) over (partition by client_id order by boundary_month) as month_end_at,
        lead(won_deals_to_date) over (partition by client_id order by boundary_month) as won_deals_end,
        lead(last_won_at) over (partition by client_id order by boundary_month) as last_won_at_end,
        lead(is_active) over (partition by client_id order by boundary_month) as is_active_end
    from boundary_activity
),

client_months as (
    -- the last boundary (the end of the as-of month) is no month of its own
    select month_states.*
    from month_states
    inner join months
        on month_states.month = months.month
),

revenue_before_start as (
    select
        client_months.client_id,
        client_months.month,
        sum(won_deals.revenue_amount) as revenue_window_start
    from client_months
    inner join won_deals
        on client_months.client_id = won_deals.client_id
        and won_deals.closed_at <= client_months.month_start_at
        and won_deals.closed_at > {{ dbt.dateadd('day', -1 * var('churn_window_days'), 'client_months.month_start_at') }}
    where client_months.is_active_start
    group by 1, 2
),

final as (
    select
        ---------- keys
        client_months.client_id,
        client_months.month,
        ---------- attributes
        coalesce(clients.segment, '(none)') as segment,
        coalesce(clients.channel, '(none)') as channel,
        ---------- boundaries (UTC)
        client_months.month_start_at,
        client_months.month_end_at,
        ---------- states
        client_months.is_active_start,
        client_months.is_active_end,
        client_months.is_active_start and not client_months.is_active_end as is_churned,
        {{ business_month('client_months.first_won_at') }} = client_months.month as is_new,
        (
            client_months.is_active_end
            and not client_months.is_active_start
            and client_months.won_deals_start > 0
        ) as is_reactivated,
        client_months.won_deals_start,
        client_months.won_deals_end,
        client_months.last_won_at_end,
        case
            when client_months.won_deals_end = 0 then null
            when client_months.is_active_end
                and client_months.won_deals_end >= {{ var('developed_min_won_deals') }} then 'developed'
            when client_months.is_active_end then 'developing'
            when client_months.last_won_at_end
                >= {{ dbt.dateadd('day', -2 * var('churn_window_days'), 'client_months.month_end_at') }}
                then 'sleeping'
            else 'lost'
        end as lifecycle_phase_end,
        ---------- money
        coalesce(revenue_before_start.revenue_window_start, 0) as revenue_window_start
    from client_months
    left join clients
        on client_months.client_id = clients.client_id
    left join revenue_before_start
        on client_months.client_id = revenue_before_start.client_id
        and client_months.month = revenue_before_start.month
)

select * from final
