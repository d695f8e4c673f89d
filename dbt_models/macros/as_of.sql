{#- The run's as-of time (UTC timestamp), as a scalar SQL expression.

    var as_of (ISO 8601; naive = business time zone) when set, else the latest event timestamp in
    the data; both are resolved once, in the one-row model int_as_of, so every model that asks
    gets the same value. No model reads the wall clock. -#}
{% macro as_of() -%}
    (select as_of_at from {{ ref('int_as_of') }})
{%- endmacro %}


{#- var as_of parsed (a UTC timestamp expression), or null when the var is not set -#}
{% macro as_of_var() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or (value | string | trim) in ('', 'None', 'null') -%}
        cast(null as {{ dbt.type_timestamp() }})
    {%- else -%}
        {{ parse_timestamp_utc("'" ~ (value | string | trim | replace("'", "''")) ~ "'") }}
    {%- endif -%}
{%- endmacro %}
