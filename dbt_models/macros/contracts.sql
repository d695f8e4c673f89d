{#- A contracted incremental model's new rows on PostgreSQL get the contract's column types (D189).

    dbt-postgres creates a contracted table with the contract's types, but the temporary table
    of an incremental run from the query alone (`create temporary table ... as`). Where the two
    differ in name only (`text` and `varchar`, which DuckDB does not tell apart), the schema
    check of `on_schema_change='fail'` stops the second run. Here the temporary table is made
    as the contracted table is (the contract's columns, then an insert), as dbt-postgres does
    for a permanent one; everything else is dbt-postgres's `create_table_as`. -#}
{% macro postgres__create_table_as(temporary, relation, sql) -%}
  {%- set unlogged = config.get('unlogged', default=false) -%}
  {%- set sql_header = config.get('sql_header', none) -%}

  {{ sql_header if sql_header is not none }}

  create {% if temporary -%}
    temporary
  {%- elif unlogged -%}
    unlogged
  {%- endif %} table {{ relation }}
  {% set contract_config = config.get('contract') %}
  {% if contract_config.enforced %}
    {{ get_assert_columns_equivalent(sql) }}
    {{ get_table_columns_and_constraints() }} ;
    insert into {{ relation }} (
      {{ adapter.dispatch('get_column_names', 'dbt')() }}
    )
    {%- set sql = get_select_subquery(sql) %}
  {% else %}
    as
  {% endif %}
  (
    {{ sql }}
  );
{%- endmacro %}
