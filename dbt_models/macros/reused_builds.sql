{#- Every dbt build, as it starts, drops the token that says which build the dbt asset's kept
    keys describe (lib/dbt_test_reuse.py, D385): a build may replace any relation, so after one
    that did not keep its keys (a direct `dbt build`, perhaps of other code; one that died) the
    next run of the asset reuses no model and gives no test again. The asset writes a new token
    once it has kept its build's keys. Nothing is kept on PostgreSQL (every node builds). -#}
{% macro forget_reused_builds() -%}
    {{ return(adapter.dispatch('forget_reused_builds', 'voronka')()) }}
{%- endmacro %}

{% macro duckdb__forget_reused_builds() -%}
    drop table if exists raw._dbt_build
{%- endmacro %}

{#- nothing is kept on PostgreSQL, so there is nothing to forget -#}
{% macro postgres__forget_reused_builds() -%}
    select 1
{%- endmacro %}
