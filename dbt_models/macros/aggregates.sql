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
    incremental build of the same inbox. The mean is rounded once, by exact_ratio, to data_type
    (D290). Nulls are ignored; no values give null. Every mart
    mean of a non-integer measure goes through exact_mean; means of integers are exact anyway
    but use it too, so no avg() is left to audit. -#}
{% macro exact_sum(expr, scale=9) -%}
    sum(cast({{ expr }} as decimal(38, {{ scale }})))
{%- endmacro %}

{% macro exact_mean(expr, scale=9, data_type='decimal(18, 6)') -%}
    {{ exact_ratio(exact_sum(expr, scale), 'count(' ~ expr ~ ')', data_type) }}
{%- endmacro %}


{#- numerator / denominator as a KPI value; a zero (or null) denominator gives null, never 0
    (kpi-definitions "Conventions"). -#}
{% macro safe_ratio(numerator, denominator, data_type='decimal(18,6)') -%}
    {{ exact_ratio(numerator, denominator, data_type) }}
{%- endmacro %}


{#- numerator / denominator computed exactly and rounded once, half away from zero, to data_type
    (a 'decimal(p, s)'), as money must be (D22, D290); null when either is null or the
    denominator is 0. Integers and decimals of scale <= 9 are exact; a double is first rounded to
    9 decimals (DuckDB) or 15 significant digits (PostgreSQL's cast to numeric). -#}
{% macro exact_ratio(numerator, denominator, data_type='decimal(18,6)') -%}
    {%- set parts = data_type.replace(' ', '').lower() -%}
    {%- if not (parts.startswith('decimal(') and parts.endswith(')') and parts[8:-1].split(',') | length == 2) -%}
        {{ exceptions.raise_compiler_error("exact_ratio: data_type must be 'decimal(p, s)', got '" ~ data_type ~ "'") }}
    {%- endif -%}
    {%- set precision = parts[8:-1].split(',')[0] | int -%}
    {%- set scale = parts[8:-1].split(',')[1] | int -%}
    {%- if scale > 9 or precision > 38 or scale > precision -%}
        {{ exceptions.raise_compiler_error("exact_ratio: data_type must have a scale of at most 9 and a precision of at most 38, got '" ~ data_type ~ "'") }}
    {%- endif -%}
    {{ return(adapter.dispatch('exact_ratio', 'voronka')(numerator, denominator, precision, scale)) }}
{%- endmacro %}

{#- PostgreSQL's numeric division keeps only about 16 significant digits (100 * 10^11 / 3 is
    3333333333333.333, cast to 3333333333333.333000), so the quotient at the target scale is
    the integer division div() (exact), rounded half away from zero as on DuckDB (D290). numeric
    has no overflow here; a double is cast to numeric first (15 significant digits). -#}
{% macro postgres__exact_ratio(numerator, denominator, precision, scale) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as numeric)' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as numeric)' -%}
    cast(
        sign({{ n }}) * sign({{ d }})
        * div(2 * abs({{ n }}) * 1{{ '0' * scale }} + abs({{ d }}), nullif(2 * abs({{ d }}), 0))
        {%- if scale > 0 %} * 0.{{ '0' * (scale - 1) }}1{% endif %}
        as decimal({{ precision }}, {{ scale }})
    )
{%- endmacro %}

{#- DuckDB divides decimals in DOUBLE: 1911750.90 / 12 is 159312.57499999998, which the cast
    rounds to 159312.57 (D290). Here both sides become whole numbers of 10^-9 (HUGEINT), the
    quotient at the target scale is rounded half away from zero by integer division,
    q = (2 |n| 10^s + |d|) // (2 |d|) with the sign of n / d, and goes back to a decimal by a
    decimal product (exact). Bounds: |numerator| < 8.5 * 10^(28 - s) and < 10^20,
    |denominator| < 10^20; beyond them DuckDB raises an overflow error, never a wrong value. -#}
{% macro duckdb__exact_ratio(numerator, denominator, precision, scale) -%}
    {%- set n = 'cast(cast(' ~ numerator ~ ' as decimal(38, 9)) * 1000000000 as hugeint)' -%}
    {%- set d = 'cast(cast(' ~ denominator ~ ' as decimal(38, 9)) * 1000000000 as hugeint)' -%}
    cast(
        cast(
            (case when ({{ n }} < 0) = ({{ d }} < 0) then 1 else -1 end)
            * ((2 * abs({{ n }}) * cast(1{{ '0' * scale }} as hugeint) + abs({{ d }})) // nullif(2 * abs({{ d }}), 0))
            as decimal(38, 0)
        ){% if scale > 0 %} * cast(0.{{ '0' * (scale - 1) }}1 as decimal({{ scale + 1 }}, {{ scale }})){% endif %}
        as decimal({{ precision }}, {{ scale }})
    )
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
