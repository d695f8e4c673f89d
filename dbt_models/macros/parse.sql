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
        when {{ regex_matches(column, with_offset) }}
            then cast(
                ({{ dbt.safe_cast("regexp_replace(" ~ column ~ ", '[[:space:]]+(Z|[+-])', '\\1')", "timestamp with time zone") }})
                at time zone 'UTC'
                as timestamp
            )
        else cast(
            (({{ dbt.safe_cast(column, dbt.type_timestamp()) }}) at time zone '{{ var("business_timezone") }}')
            at time zone 'UTC'
            as timestamp
        )
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
    {{ dbt.safe_cast("replace(" ~ strip_spaces(column) ~ ", ',', '.')", "decimal(" ~ precision ~ "," ~ scale ~ ")") }}
{%- endmacro %}


{#- Whole number -> bigint (the loader rejects `1.5`: decision D6) -#}
{% macro parse_integer(column) -%}
    {{ dbt.safe_cast(strip_spaces(column), dbt.type_bigint()) }}
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
    KPIs). The same SQL works on DuckDB (ICU) and PostgreSQL. -#}
{% macro to_business_time(ts_utc) -%}
    cast((({{ ts_utc }}) at time zone 'UTC') at time zone '{{ var("business_timezone") }}' as timestamp)
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


{#- Wall time in var business_timezone -> UTC timestamp (the inverse of to_business_time) -#}
{% macro from_business_time(ts_local) -%}
    cast((cast({{ ts_local }} as {{ dbt.type_timestamp() }}) at time zone '{{ var("business_timezone") }}') at time zone 'UTC' as timestamp)
{%- endmacro %}
