{#- Aggregates and arithmetic of the KPI marts that must read alike on DuckDB and PostgreSQL. -#}


{#- Exact median (kpi-definitions "Conventions": the mean of the two middle values for an even
    count); nulls are ignored, no rows give null. DuckDB's quantile_cont and PostgreSQL's
    percentile_cont interpolate, which for 0.5 is exactly that mean. -#}
{% macro exact_median(expr) -%}
    {{ return(adapter.dispatch('exact_median', 'voronka')(expr)) }}
{%- endmacro %}

{% macro postgres__exact_median(expr) -%}
    percentile_cont(0.5) within group (order by cast({{ expr }} as double precision))
{%- endmacro %}

{% macro duckdb__exact_median(expr) -%}
    quantile_cont({{ expr }}, 0.5)
{%- endmacro %}


{#- Exact sum and mean (D92): each value is cast on its own to decimal(38, scale) (a fixed
    rounding of that one value), the decimals are summed exactly, and a mean divides that sum
    once by the count. A float sum (avg() of doubles, sum() of ln()) depends on the order the
    rows are added in, and DuckDB adds them in a different order with other threads, data
    sizes or an incremental run, which moved the 6th decimal of marts between a fresh and an
    incremental build of the same inbox. Nulls are ignored; no values give null. Every mart
    mean of a non-integer measure goes through exact_mean; means of integers are exact anyway
    but use it too, so no avg() is left to audit. -#}
{% macro exact_sum(expr, scale=9) -%}
    sum(cast({{ expr }} as decimal(38, {{ scale }})))
{%- endmacro %}

{% macro exact_mean(expr, scale=9) -%}
    ({{ exact_sum(expr, scale) }} / nullif(count({{ expr }}), 0))
{%- endmacro %}


{#- numerator / denominator as a KPI value; a zero (or null) denominator gives null, never 0
    (kpi-definitions "Conventions"). -#}
{% macro safe_ratio(numerator, denominator, data_type='decimal(18,6)') -%}
    cast(1.0 * ({{ numerator }}) / nullif({{ denominator }}, 0) as {{ data_type }})
{%- endmacro %}


{#- Seconds from one UTC timestamp to another (fractional seconds kept on both engines) -#}
{% macro seconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('seconds_between', 'voronka')(start_at, end_at)) }}
{%- endmacro %}

{% macro postgres__seconds_between(start_at, end_at) -%}
    extract(epoch from (({{ end_at }}) - ({{ start_at }})))
{%- endmacro %}

{% macro duckdb__seconds_between(start_at, end_at) -%}
    (epoch({{ end_at }}) - epoch({{ start_at }}))
{%- endmacro %}


{#- The rows of several partial aggregates of the scorecard intermediates (each a CTE with
    scope, month, manager_id and some of the measures), merged into one row per scope, month and
    manager_id: a measure comes from the one branch that computes it (max() of one non-null
    value). branches: a list of (cte name, [measures]) pairs. -#}
{% macro merge_measure_branches(branches) -%}
    {%- set all_measures = [] -%}
    {%- for branch in branches -%}
        {%- for measure in branch[1] -%}{%- do all_measures.append(measure) -%}{%- endfor -%}
    {%- endfor -%}
    select
        scope,
        month,
        manager_id,
        {%- for measure in all_measures %}
        max({{ measure }}) as {{ measure }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        {%- for branch in branches %}
        select
            scope,
            month,
            manager_id,
            {%- for measure in all_measures %}
            {% if measure in branch[1] %}{{ measure }}{% else %}{{ measure_null() }}{% endif %} as {{ measure }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ branch[0] }}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as branches
    group by 1, 2, 3
{%- endmacro %}


{#- The null of a measure in a branch of merge_measure_branches, whose other branches give the
    column its type. DuckDB types an untyped null by the other branches (no decimal widened);
    PostgreSQL types two untyped nulls met first as text, then refuses the numbers (D166): there
    it is a numeric null (every measure is a number; numeric meets bigint, numeric and double). -#}
{% macro measure_null() -%}
    {{ return(adapter.dispatch('measure_null', 'voronka')()) }}
{%- endmacro %}

{% macro duckdb__measure_null() -%}
    null
{%- endmacro %}

{% macro postgres__measure_null() -%}
    cast(null as numeric)
{%- endmacro %}
