{#-
    Parsing of the raw layer's text, per the value formats of the inbox contract
    (docs/inbox-contract.md, "Value formats"; decision D75).

    The rules live once, in dagster_project/lib/parsing.py: its patterns, separators, bounds and
    words, and the DuckDB expressions built from them, reach these macros through the generated
    macro parse_rules() (macros/parse_rules.sql). The loader and the Great Expectations raw
    batches run the same expressions, so a value the loader lets into raw parses here to the same
    value, and a value it quarantines gives null here (tests/integration/test_parse_parity.py).
    Every cast is a safe one (try_cast on DuckDB): an odd value from an API source is null, it
    never stops the build.

    The postgres__ versions read the PostgreSQL expressions of the same rules from parse_rules()
    (D167): PostgreSQL has no safe cast, so each cast there runs only after the tests that make it
    safe (pattern, length, day of the month, bound): the same values parse, the others give null.
    No default__ versions: another engine (Spark) gets its own, never PostgreSQL's by accident.
-#}


{#- The column expression in a generated expression of parse_rules() for `engine` -#}
{% macro _parse_rule_sql(rule, column, engine='duckdb') -%}
    {{ parse_rules()[engine][rule] | replace('__value__', '(' ~ column ~ ')') }}
{%- endmacro %}


{#- The type a decimal is read as: it bounds the value, leaving the marts room for sums (D76) -#}
{% macro _decimal_parse_type(precision, scale) -%}
    decimal({{ precision - parse_rules()['decimal_headroom_digits'] }},{{ scale }})
{%- endmacro %}


{#- ISO 8601 timestamp -> `timestamp` (no zone) in UTC.
    With an offset (`+03:00`, `+0300`, `+03`) or `Z`: that instant. Without one (also a bare
    date): wall time in var business_timezone. Years 1900-2199, hours 00-23. -#}
{#- validated=true: the column is raw inbox text, which the loader let in only when it followed
    this rule; the pattern is then not tested again (the same values, cheaper on 36 M calls: D77) -#}
{% macro parse_timestamp_utc(column, validated=false) -%}
    {{ return(adapter.dispatch('parse_timestamp_utc', 'voronka')(column, validated)) }}
{%- endmacro %}

{% macro duckdb__parse_timestamp_utc(column, validated) -%}
    {%- set rules = parse_rules()['duckdb'] -%}
    {%- set value = '(' ~ column ~ ')' -%}
    {%- set kind = 'timestamp_validated' if validated else 'timestamp' -%}
    {{ rules[kind ~ '_head'] | replace('__value__', value) }}{{ from_business_time(rules['timestamp_wall'] | replace('__value__', value)) }}{{ rules[kind ~ '_tail'] }}
{%- endmacro %}

{#- PostgreSQL: `validated` changes nothing (no safe cast: every value is tested, D167) -#}
{% macro postgres__parse_timestamp_utc(column, validated) -%}
    {%- set rules = parse_rules()['postgres'] -%}
    {%- set value = '(' ~ column ~ ')' -%}
    {{ rules['timestamp_head'] | replace('__value__', value) }}{{ from_business_time(rules['timestamp_wall'] | replace('__value__', value)) }}{{ rules['timestamp_tail'] }}
{%- endmacro %}


{#- YYYY-MM-DD -> date -#}
{% macro parse_date(column) -%}
    {{ return(adapter.dispatch('parse_date', 'voronka')(column)) }}
{%- endmacro %}

{% macro duckdb__parse_date(column) -%}
    {{ _parse_rule_sql('date', column) }}
{%- endmacro %}

{% macro postgres__parse_date(column) -%}
    {{ _parse_rule_sql('date', column, 'postgres') }}
{%- endmacro %}


{#- YYYY-MM -> date of the month's first day -#}
{% macro parse_period(column) -%}
    {{ return(adapter.dispatch('parse_period', 'voronka')(column)) }}
{%- endmacro %}

{% macro duckdb__parse_period(column) -%}
    {{ _parse_rule_sql('period', column) }}
{%- endmacro %}

{% macro postgres__parse_period(column) -%}
    {{ _parse_rule_sql('period', column, 'postgres') }}
{%- endmacro %}


{#- Decimal -> decimal(p, s): `.` or `,` as decimal separator, spaces (also no-break, narrow
    no-break, thin, figure) and apostrophes as thousands separators, `1.234,56` and `1,234.56`;
    null for exponents, inf, nan and values of 10^(precision - 4 - scale) and more (1e12 for
    money: room for the marts' sums, D76).
    Money is decimal(18,2) (the default); weights and plan values use a larger scale. -#}
{% macro parse_decimal(column, precision=18, scale=2) -%}
    {{ return(adapter.dispatch('parse_decimal', 'voronka')(column, precision, scale)) }}
{%- endmacro %}

{#- DuckDB: a value made of digits, sign and `.` only is cast as it is, without the regular
    expression (D67, kept in the generated expression) -#}
{% macro duckdb__parse_decimal(column, precision, scale) -%}
    {{ _parse_rule_sql('decimal', column)
        | replace('__parse_type__', _decimal_parse_type(precision, scale))
        | replace('__type__', 'decimal(' ~ precision ~ ',' ~ scale ~ ')') }}
{%- endmacro %}

{% macro postgres__parse_decimal(column, precision, scale) -%}
    {{ _parse_rule_sql('decimal', column, 'postgres')
        | replace('__scale__', scale | string)
        | replace('__type__', 'decimal(' ~ precision ~ ',' ~ scale ~ ')') }}
{%- endmacro %}


{#- Whole number -> bigint, with the same separators; null for `1.5` (decision D6).
    validated=true: the column is raw inbox text the loader checked (D77). -#}
{% macro parse_integer(column, validated=false) -%}
    {{ return(adapter.dispatch('parse_integer', 'voronka')(column, validated)) }}
{%- endmacro %}

{#- DuckDB: a value DuckDB writes back as it is takes the plain cast, without the regular
    expression (D67, kept in the generated expression) -#}
{% macro duckdb__parse_integer(column, validated) -%}
    {{ _parse_rule_sql('integer_validated' if validated else 'integer', column) }}
{%- endmacro %}

{#- PostgreSQL: the loader's check of raw inbox text (validated) changes nothing here -#}
{% macro postgres__parse_integer(column, validated) -%}
    {{ _parse_rule_sql('integer', column, 'postgres') }}
{%- endmacro %}


{#- true/false, 1/0, yes/no, да/нет in any case -> boolean; anything else null -#}
{% macro parse_bool(column) -%}
    {{ return(adapter.dispatch('parse_bool', 'voronka')(column)) }}
{%- endmacro %}

{% macro duckdb__parse_bool(column) -%}
    {{ _parse_rule_sql('boolean', column) }}
{%- endmacro %}

{% macro postgres__parse_bool(column) -%}
    {{ _parse_rule_sql('boolean', column, 'postgres') }}
{%- endmacro %}


{#- Enum: lowercased (the loader accepts any case) -#}
{% macro parse_enum(column) -%}
    lower({{ column }})
{%- endmacro %}


{#- Any phone format -> E.164 digits without `+`, as text (Russian rules): a leading 8 of an
    11-digit number becomes 7; a 10-digit number gets 7 in front; other numbers keep their digits.
    No digits at all (hidden numbers, "Аноним") -> null (decision D8). -#}
{% macro normalize_phone(column) -%}
    {#- The usual separators go with plain replace() (cheap); a regular expression runs only on
        the rare values with other non-digits left (3x faster on 36 M calls than always). -#}
    {%- set stripped = "replace(replace(replace(replace(replace(replace(" ~ column
        ~ ", ' ', ''), '-', ''), '(', ''), ')', ''), '+', ''), '.', '')" -%}
    {%- set digits = "(case when " ~ regex_matches(stripped, '[^0-9]') ~ " then regexp_replace("
        ~ stripped ~ ", '[^0-9]+', '', 'g') else " ~ stripped ~ " end)" -%}
    case
        when {{ digits }} = '' then null
        when length({{ digits }}) = 11 and substr({{ digits }}, 1, 1) = '8'
            then '7' || substr({{ digits }}, 2)
        when length({{ digits }}) = 10 then '7' || {{ digits }}
        else {{ digits }}
    end
{%- endmacro %}


{#- UTC timestamp -> wall time in var business_timezone (for the months, dates and hours of
    KPIs). The same SQL works on DuckDB (ICU) and PostgreSQL. When the zone's offset has been
    fixed since some date (Europe/Moscow: +03:00 since October 2014), later timestamps move by
    that offset with plain arithmetic, earlier ones through the zone rules: same result, and on
    DuckDB about 3x cheaper than an ICU conversion per value (~100 thread-s on the large demo). -#}
{% macro to_business_time(ts_utc) -%}
    {%- set fixed = business_fixed_offset() -%}
    {%- set by_rules = "cast(((" ~ ts_utc ~ ") at time zone 'UTC') at time zone '" ~ var("business_timezone") ~ "' as timestamp)" -%}
    {%- if fixed is none -%}
    {{ by_rules }}
    {%- else -%}
    (case when ({{ ts_utc }}) >= {{ fixed.since }} then {{ dbt.dateadd('second', fixed.seconds, '(' ~ ts_utc ~ ')') }} else {{ by_rules }} end)
    {%- endif -%}
{%- endmacro %}


{#- The business time zone's UTC offset if it has not changed since a date: a dict with `since`
    (a timestamp literal, some days after the last change, valid as UTC and as wall time) and
    `seconds`, or none (daylight saving time, or a change ahead). Read at compile time from the
    tz database (pytz), sampled at noon on the 1st and 15th of each month back from 2037. -#}
{% macro business_fixed_offset() -%}
    {#- `voronka run` passes the answer of the Python twin (timestamps.fixed_offset_since) as
        var business_fixed_offset: sampling here at every call costs ~3 s of each parse -#}
    {%- set given = var("business_fixed_offset", none) -%}
    {%- if given is mapping and given.get("zone") == var("business_timezone") -%}
        {%- if given.get("since") is none -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return({
            'since': "cast('" ~ given["since"] ~ "' as " ~ dbt.type_timestamp() ~ ")",
            'seconds': given["seconds"] | int
        }) }}
    {%- endif -%}
    {%- set tz = modules.pytz.timezone(var("business_timezone")) -%}
    {%- set state = namespace(last=none, since=none, done=false) -%}
    {%- for year in range(2037, 1999, -1) if not state.done -%}
        {%- for month in range(12, 0, -1) if not state.done -%}
            {%- for day in [15, 1] if not state.done -%}
                {%- set moment = modules.datetime.datetime(year, month, day, 12) -%}
                {%- set offset = tz.localize(moment).utcoffset() -%}
                {%- if state.last is none -%}
                    {%- set state.last = offset -%}
                {%- elif offset != state.last -%}
                    {%- set state.done = true -%}
                {%- else -%}
                    {%- set state.since = moment -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if state.since is none or state.since.year >= 2037 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = (state.since + modules.datetime.timedelta(days=1)).strftime('%Y-%m-%d 00:00:00') -%}
    {{ return({
        'since': "cast('" ~ since ~ "' as " ~ dbt.type_timestamp() ~ ")",
        'seconds': (state.last.days * 86400 + state.last.seconds)
    }) }}
{%- endmacro %}


{#- The business-time-zone date of a UTC timestamp -#}
{% macro business_date(ts_utc) -%}
    cast({{ to_business_time(ts_utc) }} as date)
{%- endmacro %}


{#- The business-time-zone month (date of its first day) of a UTC timestamp -#}
{% macro business_month(ts_utc) -%}
    cast({{ dbt.date_trunc('month', to_business_time(ts_utc)) }} as date)
{%- endmacro %}


{#- The business-time-zone hour (0-23) of a UTC timestamp -#}
{% macro business_hour(ts_utc) -%}
    cast(extract(hour from {{ to_business_time(ts_utc) }}) as {{ dbt.type_int() }})
{%- endmacro %}


{#- Regular-expression test (partial match, POSIX classes so both engines read it alike) -#}
{% macro regex_matches(column, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'voronka')(column, pattern)) }}
{%- endmacro %}

{% macro postgres__regex_matches(column, pattern) -%}
    ({{ column }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regex_matches(column, pattern) -%}
    regexp_matches({{ column }}, '{{ pattern }}')
{%- endmacro %}


{#- Wall time in var business_timezone -> UTC timestamp (the inverse of to_business_time; the same
    arithmetic shortcut when the zone's offset is fixed) -#}
{% macro from_business_time(ts_local) -%}
    {%- set fixed = business_fixed_offset() -%}
    {%- set local = "cast(" ~ ts_local ~ " as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set by_rules = "cast((" ~ local ~ " at time zone '" ~ var("business_timezone") ~ "') at time zone 'UTC' as timestamp)" -%}
    {%- if fixed is none -%}
    {{ by_rules }}
    {%- else -%}
    (case when {{ local }} >= {{ fixed.since }} then {{ dbt.dateadd('second', -fixed.seconds, local) }} else {{ by_rules }} end)
    {%- endif -%}
{%- endmacro %}
