{#- Client-keyed tables rebuilt per touched client (docs/decisions.md D360-D361).

    dim_clients (D361) has one row per client that counts as itself: its newest version and its
    first deal and first won deal among the deals it counts for. Whether it counts as itself
    follows from its own version only (int_client_merges_resolved: neither merged nor deleted);
    the deals it counts for change with a deal's version and with the merges along the chain of
    the deal's own client. So the clients touched since the last build (D201's inputs seen: a
    client or deal loaded after it) are: the clients loaded since and every client whose chain of
    merges runs through one (found backwards over the live merge links, as fct_activities does,
    D300); the client each deal loaded since or of those clients counts for now; and the client
    whose kept row names such a deal as its first or first won deal (a deal that leaves a client
    changes its row only when it was one of those two). The rows of the clients loaded since are
    deleted first (one may no longer count as itself); the touched clients' rows are computed
    again (delete+insert). In full after raw rows were removed (D205) or with no inputs seen.

    int_client_months_classified (D360) has one row per client that won and month. A client's
    rows read only its won deals (closed_at and the RUB amount), its segment and channel
    (dim_clients), and the months (the first month, the as-of time). The model keeps what it read
    per won deal in `intermediate.<model>__inputs_kept` (a post-hook, in the same transaction as
    its rows); the clients touched are those of a won deal whose kept row differs from its row now
    (either way: a new, changed, moved, deleted or removed deal, a client merged, a new segment or
    channel). A difference, not a load time: it follows a merge, a deletion and a removed raw row
    (D85, D205) without reasoning about how each reaches the deals.

    The as-of time moves forward with every new day: it changes the as-of month of every client
    (its end is the as-of time), and a deal closed after the old as-of counts only from the end of
    the old as-of month on. So the rows of every client from the old as-of month on are built
    again, and all the rows of the touched clients. In full instead: a first build or a full
    refresh, nothing kept, an as-of that moved backwards, another first month. -#}


{#- What int_client_months_classified reads per won deal, as a query (kept by the post-hook and
    compared with the kept rows) -#}
{% macro client_month_inputs_sql() -%}
    select
        deals.deal_id,
        deals.client_id,
        deals.closed_at,
        deals.amount,
        deals.currency,
        clients.segment,
        clients.channel
    from {{ ref('fct_deals') }} as deals
    left join {{ ref('dim_clients') }} as clients
        on deals.client_id = clients.client_id
    where deals.is_won
        and deals.closed_at is not null
{%- endmacro %}


{#- The first month int_client_months_classified rebuilds for every client, as an ISO date, or
    none when it is built in full: not incremental (a first build, a full refresh, parsing, a dbt
    unit test), nothing kept, or months that are not the kept ones extended (another first month,
    an as-of before the kept one, no as-of). -#}
{% macro client_months_rebuild_from() -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set months_seen = kept_relation('__months_seen') -%}
    {%- set inputs_kept = kept_relation('__inputs_kept') -%}
    {%- for kept in [months_seen, inputs_kept] -%}
        {%- if adapter.get_relation(kept.database, kept.schema, kept.identifier) is none -%}
            {{ return(none) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set query -%}
        select cast(seen.as_of_month as {{ dbt.type_string() }})
        from {{ months_seen }} as seen
        cross join (
            select
                min(month) as first_month,
                max(as_of_at) as as_of_at
            from {{ ref('int_client_base_months_listed') }}
        ) as now_listed
        where seen.first_month = now_listed.first_month
            and now_listed.as_of_at >= seen.as_of_at
    {%- endset -%}
    {%- set values = run_query(query).columns[0].values() -%}
    {%- if values | length != 1 or values[0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(values[0][:10]) }}
{%- endmacro %}


{#- The clients whose kept inputs differ from their inputs now (client_id, possibly repeated;
    a deal of a deleted client has none, and its rows are always rebuilt) -#}
{% macro client_months_touched_sql() -%}
    select changed.client_id
    from (
        (
            {{ client_month_inputs_sql() }}
            except
            select * from {{ kept_relation('__inputs_kept') }}
        )
        union all
        (
            select * from {{ kept_relation('__inputs_kept') }}
            except
            {{ client_month_inputs_sql() }}
        )
    ) as changed
    where changed.client_id is not null
{%- endmacro %}


{#- Pre-hooks of int_client_months_classified: delete the rows it builds again (`part`
    'months': every client's from the rebuilt month on, and those without a client; 'clients':
    every row of the touched clients), or every row when built in full. Two statements, no
    `in (select ...)` under an `or` (D240). -#}
{% macro delete_client_month_rows(part) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- else -%}
    {%- set rebuild_from = client_months_rebuild_from() -%}
    {%- if rebuild_from is none and part == 'months' -%}
    delete from {{ this }}
    {%- elif rebuild_from is none -%}
    select 1
    {%- elif part == 'months' -%}
    delete from {{ this }}
    where month >= cast('{{ rebuild_from }}' as date)
        or client_id is null
    {%- else -%}
    delete from {{ this }}
    where client_id in (
        {{ client_months_touched_sql() }}
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of int_client_months_classified: keep what it read (its won deals' inputs, and its
    months' first month and as-of) -#}
{% macro keep_client_month_inputs() -%}
    {%- if not execute or this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set months_seen = kept_relation('__months_seen') -%}
    {%- set inputs_kept = kept_relation('__inputs_kept') %}
    drop table if exists {{ inputs_kept }};
    create table {{ inputs_kept }} as
    {{ client_month_inputs_sql() }};
    drop table if exists {{ months_seen }};
    create table {{ months_seen }} as
    select
        min(month) as first_month,
        max(month) as as_of_month,
        max(as_of_at) as as_of_at
    from {{ ref('int_client_base_months_listed') }}
    {%- endif -%}
{%- endmacro %}


{#- The time after which a client or deal loaded touches dim_clients' rows (a SQL timestamp), or
    none when it is built in full: not incremental (a first build, a full refresh, parsing), raw
    rows removed since (D205), no inputs seen kept (D201). A dbt unit test that makes it
    incremental: the newest load of the given rows of `this`. -#}
{% macro dim_clients_rebuild_since() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if '__dbt__cte__' in (this | string) -%}
        {{ return("(select max(_loaded_at) from " ~ this ~ ")") }}
    {%- endif -%}
    {%- if removed_since_build() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(inputs_watermark(none)) }}
{%- endmacro %}


{#- The clients whose dim_clients row may differ from the kept one, as a query of client ids
    (possibly repeated; null for a deal of a deleted client), `since` a SQL timestamp -#}
{% macro dim_clients_touched(since) -%}
    with

    -- the clients loaded since and those whose chain of merges runs through one (D300, D351)
    recounted_clients as (
        {{ clients_recounted(since) }}
    ),

    recounted_deals as (
        select deal_id from {{ ref('int_deals__unioned') }}
        where _loaded_at > {{ since }}
        union
        select staged_deals.deal_id
        from {{ ref('int_deals__unioned') }} as staged_deals
        inner join recounted_clients
            on staged_deals.client_id = recounted_clients.client_id
    )

    select client_id from recounted_clients
    union
    select deals.client_id
    from {{ ref('fct_deals') }} as deals
    inner join recounted_deals
        on deals.deal_id = recounted_deals.deal_id
    union
    select kept.client_id
    from {{ this }} as kept
    inner join recounted_deals
        on kept.first_deal_id = recounted_deals.deal_id
    union
    select kept.client_id
    from {{ this }} as kept
    inner join recounted_deals
        on kept.first_won_deal_id = recounted_deals.deal_id
{%- endmacro %}


{#- Pre-hook of dim_clients: delete the rows of the clients loaded since (a deleted or merged
    one has no row to replace its own), or every row when it is built in full; nothing on a
    first build or a full refresh -#}
{% macro delete_loaded_client_rows() -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- else -%}
    {%- set since = dim_clients_rebuild_since() -%}
    {%- if since is none -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }}
    where client_id in (
        select client_id from {{ ref('int_clients__unioned') }}
        where _loaded_at > {{ since }}
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}
