{#- dbt's unit tests on PostgreSQL (D168).

    dbt compares a unit test's actual and expected rows as text (daff). PostgreSQL's numeric
    keeps each value's own scale, and a model's column loses its declared scale through a CASE or
    an aggregate (`numeric`, not `numeric(18,4)`), so the expected `1.5` (cast to that plain
    numeric) met the actual `1.5000` and the test failed on equal numbers. Here the numeric
    columns of both sides go through trim_scale(): equal numbers compare equal, different ones
    still differ. DuckDB keeps declared types, so its unit tests are compared as dbt does. -#}
{% macro postgres__get_unit_test_sql(main_sql, expected_fixture_sql, expected_column_names) -%}
    {%- set numeric_columns = [] -%}
    {%- if execute -%}
        {%- for column in get_column_schema_from_query(get_empty_subquery_sql(main_sql)) -%}
            {%- if column.data_type | lower in ('numeric', 'decimal') or (column.data_type | lower).startswith('numeric(') -%}
                {%- do numeric_columns.append(column.name | lower) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set compared = [] -%}
    {%- for quoted in expected_column_names -%}
        {%- if quoted | replace('"', '') | lower in numeric_columns -%}
            {%- do compared.append('trim_scale(' ~ quoted ~ ') as ' ~ quoted) -%}
        {%- else -%}
            {%- do compared.append(quoted) -%}
        {%- endif -%}
    {%- endfor %}
-- Build actual result given inputs
with dbt_internal_unit_test_actual as (
  select
    {{ compared | join(', ') }}, {{ dbt.string_literal("actual") }} as {{ adapter.quote("actual_or_expected") }}
  from (
    {{ main_sql }}
  ) _dbt_internal_unit_test_actual
),
-- Build expected result
dbt_internal_unit_test_expected as (
  select
    {{ compared | join(', ') }}, {{ dbt.string_literal("expected") }} as {{ adapter.quote("actual_or_expected") }}
  from (
    {{ expected_fixture_sql }}
  ) _dbt_internal_unit_test_expected
)
-- Union actual and expected results
select * from dbt_internal_unit_test_actual
union all
select * from dbt_internal_unit_test_expected
{%- endmacro %}
