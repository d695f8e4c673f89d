{#- One row per deal created by the as-of time, with what the sales and speed-to-lead measures
    need (kpi-definitions, "Sales", "Telephony"): the month and manager it is credited to at
    creation and, when it closed by the as-of time, at close (fct_deals resolves the managers by
    the attribution rule), its first response, and for a won deal the revenue (RUB), the cycle,
    the touches, whether it is the client's first won deal and whether the client had at least
    two won deals closed by the end of the month of close. Events after the as-of time do not
    exist yet. -#}

with

-- not materialized: read more than once; DuckDB (and PostgreSQL) would otherwise copy the
-- whole table into a temporary result first instead of scanning it with each reader's filters
deals as not materialized (
    select * from {{ ref('fct_deals') }}
),

first_responses as (
    select * from {{ ref('int_deal_first_responses_found') }}
),

won_deal_touches as (
    select * from {{ ref('int_won_deals_touched') }}
),

created_deals as (
    select * from deals
    where created_at <= {{ as_of() }}
),

second_won_deals as (
    -- a client is a repeat client from the month of its second won deal on
    select
        client_id,
        closed_month as second_won_month
    from deals
    where client_won_deal_number = 2
        and closed_at <= {{ as_of() }}
),

final as (
    select
        ---------- ids
        created_deals.deal_id,
        created_deals.client_id,
        ---------- at creation
        created_deals.created_month,
        created_deals.manager_id_at_creation,
        created_deals.is_won and created_deals.closed_at <= {{ as_of() }} as is_won_by_as_of,
        first_responses.first_response_at is not null as has_response,
        first_responses.response_minutes,
        ---------- at close (null unless closed by the as-of time)
        case when created_deals.closed_at <= {{ as_of() }} then created_deals.closed_month end
            as closed_month,
        case when created_deals.closed_at <= {{ as_of() }} then created_deals.manager_id_at_close end
            as manager_id_at_close,
        created_deals.is_won and created_deals.closed_at <= {{ as_of() }} as is_won,
        created_deals.is_lost and created_deals.closed_at <= {{ as_of() }} as is_lost,
        -- revenue is in RUB: no rate table yet, so other currencies do not count (kpi-definitions)
        case
            when created_deals.is_won and created_deals.currency = 'RUB' then created_deals.amount
        end as won_amount,
        created_deals.client_won_deal_number = 1 as is_first_won_deal,
        (
            second_won_deals.second_won_month is not null
            and second_won_deals.second_won_month <= created_deals.closed_month
        ) as is_repeat_client_at_close,
        case
            when created_deals.is_won
                then {{ seconds_between('created_deals.created_at', 'created_deals.closed_at') }} / 86400.0
        end as cycle_days,
        won_deal_touches.touches
    from created_deals
    left join first_responses
        on created_deals.deal_id = first_responses.deal_id
    left join won_deal_touches
        on created_deals.deal_id = won_deal_touches.deal_id
    left join second_won_deals
        on created_deals.client_id = second_won_deals.client_id
)

select * from final
