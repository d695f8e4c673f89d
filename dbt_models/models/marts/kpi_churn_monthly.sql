{#- Churn, retention and lifecycle per month and client segment (kpi-definitions, "Clients, churn
    and lifecycle"): segment 'all' for the whole base plus each dim_clients.segment ('(none)' for
    clients without one). Months: the client-base months (int_client_base_months_listed: from the
    first deal or spend month to the as-of month; the as-of month is measured up to the as-of
    time). Client-month states come from int_client_months_classified
    (shared with kpi_clv_cac_monthly); potential clients (a deal, no won deal yet) are counted here
    from the first deal and first won deal of each client, cumulatively by month boundary. -#}

with

client_months as (
    select * from {{ ref('int_client_months_classified') }}
),

months as (
    select * from {{ ref('int_client_base_months_listed') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

clients as (
    select * from {{ ref('dim_clients') }}
),

month_range as (
    select
        min(month) as first_month,
        max(as_of_at) as as_of_at
    from months
),

client_firsts as (
    -- first deal created and first won deal closed, both up to as-of
    select
        deals.client_id,
        min(deals.created_at) as first_deal_at,
        min(
            case when deals.is_won and deals.closed_at <= month_range.as_of_at then deals.closed_at end
        ) as first_won_at
    from deals
    cross join month_range
    where deals.created_at <= month_range.as_of_at
    group by 1
),

potential_events as (
    -- +1 at the boundary that first sees a deal, -1 at the boundary that first sees a won deal
    select
        coalesce(clients.segment, '(none)') as segment,
        {{ boundary_month('client_firsts.first_deal_at') }} as raw_boundary_month,
        1 as potential_delta
    from client_firsts
    left join clients
        on client_firsts.client_id = clients.client_id
    union all
    select
        coalesce(clients.segment, '(none)') as segment,
        {{ boundary_month('greatest(client_firsts.first_deal_at, client_firsts.first_won_at)') }} as raw_boundary_month,
        -1 as potential_delta
    from client_firsts
    left join clients
        on client_firsts.client_id = clients.client_id
    where client_firsts.first_won_at is not null
),

potential_per_boundary as (
    select
        potential_events.segment,
        case
            when potential_events.raw_boundary_month < month_range.first_month then month_range.first_month
            else potential_events.raw_boundary_month
        end as boundary_month,
        sum(potential_events.potential_delta) as potential_delta
    from potential_events
    cross join month_range
    group by 1, 2
),

potential_segmented as (
    select
        segment,
        boundary_month,
        potential_delta
    from potential_per_boundary
    union all
    select
        'all' as segment,
        boundary_month,
        potential_delta
    from potential_per_boundary
),

segments as (
    select distinct segment from potential_segmented
),

month_segments as (
    select
        months.month,
        months.next_month,
        segments.segment
    from months
    cross join segments
),

potential_at_end as (
    -- potential at the end of m: the running sum over the boundaries up to m's end
    select
        month_segments.month,
        month_segments.segment,
        coalesce(sum(potential_segmented.potential_delta), 0) as clients_potential
    from month_segments
    left join potential_segmented
        on month_segments.segment = potential_segmented.segment
        and potential_segmented.boundary_month <= month_segments.next_month
    group by 1, 2
),

client_months_segmented as (
    select
        month,
        segment,
        is_active_start,
        is_active_end,
        is_churned,
        is_new,
        is_reactivated,
        lifecycle_phase_end,
        revenue_window_start
    from client_months
    union all
    select
        month,
        'all' as segment,
        is_active_start,
        is_active_end,
        is_churned,
        is_new,
        is_reactivated,
        lifecycle_phase_end,
        revenue_window_start
    from client_months
),

client_month_counts as (
    select
        month,
        segment,
        sum(case when is_active_start then 1 else 0 end) as clients_active_start,
        sum(case when is_churned then 1 else 0 end) as clients_churned,
        sum(case when is_new then 1 else 0 end) as clients_new,
        sum(case when is_reactivated then 1 else 0 end) as clients_reactivated,
        sum(case when is_churned then revenue_window_start else 0 end) as revenue_churned,
        sum(case when is_active_start then revenue_window_start else 0 end) as revenue_active_start,
        sum(case when lifecycle_phase_end = 'developing' then 1 else 0 end) as clients_developing,
        sum(case when lifecycle_phase_end = 'developed' then 1 else 0 end) as clients_developed,
        sum(case when lifecycle_phase_end = 'sleeping' then 1 else 0 end) as clients_sleeping,
        sum(case when lifecycle_phase_end = 'lost' then 1 else 0 end) as clients_lost
    from client_months_segmented
    group by 1, 2
),

joined as (
    select
        potential_at_end.month,
        potential_at_end.segment,
        coalesce(client_month_counts.clients_active_start, 0) as clients_active_start,
        coalesce(client_month_counts.clients_churned, 0) as clients_churned,
        coalesce(client_month_counts.clients_new, 0) as clients_new,
        coalesce(client_month_counts.clients_reactivated, 0) as clients_reactivated,
        client_month_counts.revenue_churned,
        client_month_counts.revenue_active_start,
        potential_at_end.clients_potential,
        coalesce(client_month_counts.clients_developing, 0) as clients_developing,
        coalesce(client_month_counts.clients_developed, 0) as clients_developed,
        coalesce(client_month_counts.clients_sleeping, 0) as clients_sleeping,
        coalesce(client_month_counts.clients_lost, 0) as clients_lost
    from potential_at_end
    left join client_month_counts
        on potential_at_end.month = client_month_counts.month
        and potential_at_end.segment = client_month_counts.segment
),

final as (
    select
        ---------- keys
        cast(month as date) as month,
        cast(segment as {{ dbt.type_string() }}) as segment,
        ---------- counts and rates
        cast(clients_active_start as {{ dbt.type_int() }}) as clients_active_start,
        cast(clients_churned as {{ dbt.type_int() }}) as clients_churned,
        {{ safe_ratio('clients_churned', 'clients_active_start') }} as churn_rate,
        cast(1 - {{ safe_ratio('clients_churned', 'clients_active_start') }} as decimal(18, 6)) as retention_rate,
        cast(clients_new as {{ dbt.type_int() }}) as clients_new,
        cast(clients_reactivated as {{ dbt.type_int() }}) as clients_reactivated,
        {{ safe_ratio('revenue_churned', 'revenue_active_start') }} as revenue_churn_rate,
        ---------- lifecycle at the end of the month
        cast(clients_potential as {{ dbt.type_int() }}) as clients_potential,
        cast(clients_developing as {{ dbt.type_int() }}) as clients_developing,
        cast(clients_developed as {{ dbt.type_int() }}) as clients_developed,
        cast(clients_sleeping as {{ dbt.type_int() }}) as clients_sleeping,
        cast(clients_lost as {{ dbt.type_int() }}) as clients_lost
    from joined
)

select * from final
