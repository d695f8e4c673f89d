{#- Deleted and merged records (kpi-definitions, "Deleted records"; docs/decisions.md D85).

    Every staging model of deals, clients, activities, requests and calls gives `deleted_at`
    (null while the record lives) and the clients `merged_into_client_id` (null unless merged);
    the intermediate unions carry them. Core drops a deleted record from every month (no as-of
    filter: the run that learns of a deletion drops it everywhere) and counts a merged client's
    deals, activities, requests, calls and survey responses for the client it was merged into
    (intermediate.int_client_merges_resolved). The rule lives in these macros. -#}


{#- The condition "the record `relation_alias` lives": its newest version is not deleted -#}
{% macro is_live(relation_alias) -%}
    {{ relation_alias }}.deleted_at is null
{%- endmacro %}


{#- The client a record with client id `client_id_expr` counts for, given the row `merges_alias`
    of int_client_merges_resolved joined on that id: a live client itself, a merged one the
    client it was merged into, a deleted one nobody (null); an id no source knows stays as it is. -#}
{% macro counted_client_id(client_id_expr, merges_alias) -%}
    case
        when {{ merges_alias }}.client_id is null then {{ client_id_expr }}
        else {{ merges_alias }}.counted_client_id
    end
{%- endmacro %}


{#- The condition "the client `client_id_expr` counts as itself" (it is neither merged nor
    deleted), given the row `merges_alias` of int_client_merges_resolved left joined on that id:
    the same as `counted_client_id(...) = client_id_expr`, but written on the merges row's own
    columns, which PostgreSQL estimates as a plain filter (about half the rows) where it took the
    comparison with the join key for a second join condition and expected one row (D190). -#}
{% macro counts_as_itself(client_id_expr, merges_alias) -%}
    case
        when {{ merges_alias }}.client_id is null then {{ client_id_expr }} is not null
        else {{ merges_alias }}.counted_client_id = {{ merges_alias }}.client_id
    end
{%- endmacro %}


{#- Pre-hook of an incremental fact (delete+insert by `key`): remove the rows whose record is now
    deleted (`deleted_keys`: a query giving the keys), which the new rows cannot replace because a
    deleted record gives no row. A restored record comes back with its new version's load (D85).
    Nothing on a first build or a full refresh. -#}
{% macro delete_deleted_rows(key, deleted_keys) -%}
    {%- if execute and is_incremental() and '__dbt__cte__' not in (this | string) -%}
    delete from {{ this }}
    where {{ key }} in ({{ deleted_keys }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
