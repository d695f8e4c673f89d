{#- GENERATED from dagster_project/lib/parsing.py by
    `python -m dagster_project.lib.parsing`: do not edit (tests/unit/test_parsing.py
    fails while this differs). The value formats: docs/inbox-contract.md. -#}
{% macro parse_rules() -%}
{{ return({
    "date_pattern": "^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "decimal_headroom_digits": 4,
    "decimal_patterns": {
        "comma_groups": "^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$",
        "dot_groups": "^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$",
        "plain": "^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$"
    },
    "decimal_precision": 18,
    "duckdb": {
        "boolean": "case when lower(__value__) in ('true', '1', 'yes', '\u0434\u0430') then true when lower(__value__) in ('false', '0', 'no', '\u043d\u0435\u0442') then false end",
        "date": "case when regexp_matches(__value__, '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$') then try_cast(__value__ as date) end",
        "decimal": "cast(coalesce(case when cast(try_cast(__value__ as __parse_type__) as varchar) = __value__ then try_cast(__value__ as __parse_type__) end, try_cast(reverse(replace(regexp_replace(regexp_replace(reverse(regexp_extract(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$|^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$|^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$')), '[.,]', '#'), '[.,]', '', 'g'), '#', '.')) as __parse_type__)) as __type__)",
        "integer": "coalesce(case when cast(try_cast(__value__ as bigint) as varchar) = __value__ then try_cast(__value__ as bigint) end, try_cast(regexp_extract(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '^[+-]?[0-9]+$') as bigint))",
        "integer_validated": "coalesce(try_cast(__value__ as bigint), try_cast(regexp_extract(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '^[+-]?[0-9]+$') as bigint))",
        "period": "case when regexp_matches(__value__, '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$') then try_cast(__value__ || '-01' as date) end",
        "timestamp_head": "case when regexp_matches(__value__, '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?( *(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?))?)?$') then case when (__value__ like '%Z' or __value__ like '%+%' or substr(__value__, 11) like '%-%') then timezone('UTC', try_cast(regexp_replace(__value__, ' +(Z|[+-])', '\\1') as timestamptz)) else ",
        "timestamp_tail": " end end",
        "timestamp_validated_head": "case when (__value__ like '%Z' or __value__ like '%+%' or substr(__value__, 11) like '%-%') then timezone('UTC', try_cast(regexp_replace(__value__, ' +(Z|[+-])', '\\1') as timestamptz)) else ",
        "timestamp_validated_tail": " end",
        "timestamp_wall": "try_cast(__value__ as timestamp)"
    },
    "false_words": [
        "false",
        "0",
        "no",
        "\u043d\u0435\u0442"
    ],
    "group_separators": [
        " ",
        "\u00a0",
        "\u202f",
        "\u2009",
        "\u2007",
        "'",
        "\u2019"
    ],
    "integer_pattern": "^[+-]?[0-9]+$",
    "integer_type": "bigint",
    "minus_signs": [
        "\u2212"
    ],
    "period_pattern": "^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$",
    "postgres": {
        "boolean": "case when lower(translate(__value__, '\u0410\u0414\u0415\u041d\u0422', '\u0430\u0434\u0435\u043d\u0442')) in ('true', '1', 'yes', '\u0434\u0430') then true when lower(translate(__value__, '\u0410\u0414\u0415\u041d\u0422', '\u0430\u0434\u0435\u043d\u0442')) in ('false', '0', 'no', '\u043d\u0435\u0442') then false end",
        "date": "case when (__value__ ~ '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$') then case when cast(substr(__value__, 9, 2) as integer) <= extract(day from cast(substr(__value__, 1, 7) || '-01' as date) + interval '1 month' - interval '1 day') then cast(__value__ as date) end end",
        "decimal": "case when length((case when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '.', ''), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '') end)) <= 1000 then case when abs(round(cast((case when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '.', ''), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '') end) as numeric), __scale__)) < power(10::numeric, 14 - __scale__) then cast(cast((case when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), '.', ''), ',', '.') when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$') then replace(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-'), ',', '') end) as numeric) as __type__) end end",
        "integer": "case when (replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') ~ '^[+-]?[0-9]+$') then case when length(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-')) <= 1000 then case when cast(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') as numeric) between -9223372036854775808 and 9223372036854775807 then cast(replace(replace(replace(replace(replace(replace(replace(replace(__value__, ' ', ''), '\u00a0', ''), '\u202f', ''), '\u2009', ''), '\u2007', ''), '''', ''), '\u2019', ''), '\u2212', '-') as bigint) end end end",
        "period": "case when (__value__ ~ '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$') then cast(__value__ || '-01' as date) end",
        "timestamp_head": "case when (__value__ ~ '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?( *(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?))?)?$') then case when cast(substr(__value__, 9, 2) as integer) <= extract(day from cast(substr(__value__, 1, 7) || '-01' as date) + interval '1 month' - interval '1 day') then case when (__value__ like '%Z' or __value__ like '%+%' or substr(__value__, 11) like '%-%') then cast(cast(regexp_replace(__value__, ' +(Z|[+-])', '\\1') as timestamptz) at time zone 'UTC' as timestamp) else ",
        "timestamp_tail": " end end end",
        "timestamp_wall": "cast(__value__ as timestamp)"
    },
    "timestamp_pattern": "^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?( *(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?))?)?$",
    "true_words": [
        "true",
        "1",
        "yes",
        "\u0434\u0430"
    ]
}) }}
{%- endmacro %}
