{#-
    Parsing of the raw layer's text, per the inbox contract (docs/inbox-contract.md).

    The loader (dagster_project/lib/inbox_loader.py, `typed_expr`) lets a value into raw only when
    it parses by these same rules, so on loaded rows nothing here returns null for a non-null
    input. The casts are safe casts anyway (`dbt.safe_cast`: null instead of an error on DuckDB),
    so that one odd value cannot stop a whole build.

    Python twins pinned by unit tests: lib/timestamps.py (parse_timestamp_utc), lib/phones.py
    (normalize_phone).
-#}


{#- ISO 8601 timestamp -> `timestamp` (no zone) in UTC.
    With an offset (`+03:00`, `+0300`, `+03`) or `Z`: that instant. Without one (also a bare
    date): wall time in var business_timezone. -#}
{% macro parse_timestamp_utc(column) -%}
    {{ return(adapter.dispatch('parse_timestamp_utc', 'voronka')(column)) }}
{%- endmacro %}

{% macro default__parse_timestamp_utc(column) -%}
    {%- set with_offset = '[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?[[:space:]]*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' -%}
    case
        {#- the LIKEs only spare the regular expression the values that cannot have an offset #}
        when ({{ column }} like '%Z' or {{ column }} like '%+%' or substr({{ column }}, 17) like '%-%')
            and {{ regex_matches(column, with_offset) }}
            then cast(
                ({{ dbt.safe_cast("regexp_replace(" ~ column ~ ", '[[:space:]]+(Z|[+-])', '\\1')", "timestamp with time zone") }})
                at time zone 'UTC'
                as timestamp
            )
        else {{ from_business_time(dbt.safe_cast(column, dbt.type_timestamp())) }}
    end
{%- endmacro %}


{#- YYYY-MM-DD -> date -#}
{% macro parse_date(column) -%}
    {{ dbt.safe_cast(column, "date") }}
{%- endmacro %}


{#- YYYY-MM -> date of the month's first day -#}
{% macro parse_period(column) -%}
    {{ dbt.safe_cast(column ~ " || '-01'", "date") }}
{%- endmacro %}


{#- Spaces (also non-breaking and narrow non-breaking: Excel's thousands separators) removed. -#}
{% macro strip_spaces(column) -%}
    {%- set nbsp = "\u00a0" -%}
    {%- set narrow_nbsp = "\u202f" -%}
    regexp_replace({{ column }}, '[[:space:]{{ nbsp }}{{ narrow_nbsp }}]', '', 'g')
{%- endmacro %}


{#- Decimal with `.` or `,` as separator and spaces as thousands separators -> decimal(p, s).
    Money is decimal(18,2) (the default); weights and plan values use a larger scale. -#}
{% macro parse_decimal(column, precision=18, scale=2) -%}
    {{ return(adapter.dispatch('parse_decimal', 'voronka')(column, precision, scale)) }}
{%- endmacro %}

{% macro default__parse_decimal(column, precision, scale) -%}
    {{ dbt.safe_cast("replace(" ~ strip_spaces(column) ~ ", ',', '.')", "decimal(" ~ precision ~ "," ~ scale ~ ")") }}
{%- endmacro %}

{#- DuckDB: a value that casts as it is (no space, no comma) skips the regular expression; the
    others take the default path, so results (and errors) are the same (D67) -#}
{% macro duckdb__parse_decimal(column, precision, scale) -%}
    coalesce(try_cast({{ column }} as decimal({{ precision }},{{ scale }})), {{ default__parse_decimal(column, precision, scale) }})
{%- endmacro %}


{#- Whole number -> bigint (the loader rejects `1.5`: decision D6) -#}
{% macro parse_integer(column) -%}
    {{ return(adapter.dispatch('parse_integer', 'voronka')(column)) }}
{%- endmacro %}

{% macro default__parse_integer(column) -%}
    {{ dbt.safe_cast(strip_spaces(column), dbt.type_bigint()) }}
{%- endmacro %}

{#- DuckDB: the regular expression of strip_spaces costs ~2.6 s per 36 M values, the plain cast
    ~0.7 s; a value that casts as it is skips the expression (D67) -#}
{% macro duckdb__parse_integer(column) -%}
    coalesce(try_cast({{ column }} as {{ dbt.type_bigint() }}), {{ default__parse_integer(column) }})
{%- endmacro %}


{#- true/false, 1/0, yes/no, да/нет in any case -> boolean; anything else null.
    The capitalised Cyrillic forms are listed too: lower() of Cyrillic depends on the database
    locale on PostgreSQL. -#}
{% macro parse_bool(column) -%}
    case
        when lower({{ column }}) in ('true', '1', 'yes', 'да', 'Да', 'ДА') then true
        when lower({{ column }}) in ('false', '0', 'no', 'нет', 'Нет', 'НЕТ') then false
    end
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

{% macro default__regex_matches(column, pattern) -%}
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
