{#-
    Reading the raw schemas of the API and file sources (raw_amocrm, raw_bitrix24, raw_mango,
    raw_cdr, raw_forms; decision D40).

    A source's raw tables exist only once its extractor has run, and an API table has only the
    fields the API has returned so far (a field that appears later becomes a column then). So
    staging never selects from a source table directly: `raw_source()` looks the table and its
    columns up when the model is built and gives every requested column, null when the table
    lacks it, and no rows when the table is absent. A disabled source is an empty typed relation
    that DuckDB folds away: the unions of the intermediate layer cost nothing for it.
-#}


{#- The metadata columns of the API sources' raw tables (lib/sources/state.py) -#}
{% macro api_meta_columns() -%}
    {{ return({'_loaded_at': dbt.type_timestamp(), '_batch_id': dbt.type_string(), '_source': dbt.type_string()}) }}
{%- endmacro %}


{#- The metadata columns of the file sources' raw tables (lib/sources/files.py) -#}
{% macro file_meta_columns() -%}
    {{ return({
        '_source_file': dbt.type_string(),
        '_source_line': dbt.type_bigint(),
        '_loaded_at': dbt.type_timestamp(),
        '_batch_id': dbt.type_string(),
        '_source': dbt.type_string(),
    }) }}
{%- endmacro %}


{#- The lowercased column names of a source table as built now; [] when it does not exist (or
    while parsing, or in a dbt unit test, where the table is the test's given rows). -#}
{% macro raw_columns(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute or '__dbt__cte__' in (relation | string) -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {%- if existing is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(existing) -%}
        {%- do names.append(column.name | lower) -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}


{#- A select of `columns` (text) and `meta` (name -> type) from a source table: a column the table
    lacks is null, an absent table gives no rows. Use it as the `source` CTE of a staging model.
    In a dbt unit test the given rows are read as they are (give every column). -#}
{% macro raw_source(source_name, table_name, columns, meta=none) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set meta = api_meta_columns() if meta is none else meta -%}
    {%- set wanted = [] -%}
    {%- for name in columns if name | lower not in wanted and name | lower not in meta -%}
        {%- do wanted.append(name | lower) -%}
    {%- endfor -%}
    {%- if not execute or '__dbt__cte__' in (relation | string) -%}
        select
        {%- for name in wanted %}
            {{ adapter.quote(name) }},
        {%- endfor %}
        {%- for name in meta %}
            {{ adapter.quote(name) }}{% if not loop.last %},{% endif %}
        {%- endfor %}
        from {{ relation }}
    {%- else -%}
        {%- set present = raw_columns(source_name, table_name) -%}
        {%- if present | length == 0 %}
        {#- the source is not enabled (or has never run): no rows, the right columns -#}
        select
        {%- for name in wanted %}
            cast(null as {{ dbt.type_string() }}) as {{ adapter.quote(name) }},
        {%- endfor %}
        {%- for name, data_type in meta.items() %}
            cast(null as {{ data_type }}) as {{ adapter.quote(name) }}{% if not loop.last %},{% endif %}
        {%- endfor %}
        where 1 = 0
        {%- else %}
        select
        {%- for name in wanted %}
            {%- if name in present %}
            {{ adapter.quote(name) }},
            {%- else %}
            cast(null as {{ dbt.type_string() }}) as {{ adapter.quote(name) }},
            {%- endif %}
        {%- endfor %}
        {%- for name, data_type in meta.items() %}
            {%- if name in present %}
            {{ adapter.quote(name) }}{% if not loop.last %},{% endif %}
            {%- else %}
            cast(null as {{ data_type }}) as {{ adapter.quote(name) }}{% if not loop.last %},{% endif %}
            {%- endif %}
        {%- endfor %}
        from {{ relation }}
        {%- endif %}
    {%- endif %}
{%- endmacro %}


{#- Unix seconds (text) -> UTC timestamp; empty, 0 and non-numbers -> null (amoCRM sends 0 or
    null for "not set"). -#}
{% macro epoch_to_timestamp(column) -%}
    case
        when {{ parse_integer(column) }} > 0
            then {{ dbt.dateadd('second', parse_integer(column), "cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")") }}
    end
{%- endmacro %}


{#- A text value inside JSON text: `path` is a list of keys and array positions,
    e.g. json_text('params', ['phone']), json_text('_embedded', ['contacts', 0, 'id']). -#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'voronka')(column, path)) }}
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    (cast({{ column }} as jsonb) #>> '{ {{- path | join(',') -}} }')
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    {%- set ns = namespace(expr='$') -%}
    {%- for part in path -%}
        {%- if part is number -%}
            {%- set ns.expr = ns.expr ~ '[' ~ part ~ ']' -%}
        {%- else -%}
            {%- set ns.expr = ns.expr ~ '.' ~ part -%}
        {%- endif -%}
    {%- endfor -%}
    json_extract_string({{ column }}, '{{ ns.expr }}')
{%- endmacro %}


{#- The first value of the custom field `field` in an amoCRM `custom_fields_values` array (JSON
    text): the field is named by its id, its name or its code (case-insensitive). Null when
    `field` is empty or the record has no such field. -#}
{% macro amocrm_custom_field(column, field) -%}
    {%- if field is none or (field | string | trim) == '' -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        {{ return(adapter.dispatch('amocrm_custom_field', 'voronka')(column, field | string | trim | replace("'", "''"))) }}
    {%- endif -%}
{%- endmacro %}

{% macro postgres__amocrm_custom_field(column, field) -%}
    (
        select custom_field.value #>> '{values,0,value}'
        from jsonb_array_elements(cast({{ column }} as jsonb)) as custom_field
        where custom_field.value ->> 'field_id' = '{{ field }}'
            or lower(custom_field.value ->> 'field_name') = lower('{{ field }}')
            or upper(custom_field.value ->> 'field_code') = upper('{{ field }}')
        limit 1
    )
{%- endmacro %}

{% macro duckdb__amocrm_custom_field(column, field) -%}
    (
        select json_extract_string(custom_field.value, '$.values[0].value')
        from json_each({{ column }}) as custom_field
        where json_extract_string(custom_field.value, '$.field_id') = '{{ field }}'
            or lower(json_extract_string(custom_field.value, '$.field_name')) = lower('{{ field }}')
            or upper(json_extract_string(custom_field.value, '$.field_code')) = upper('{{ field }}')
        limit 1
    )
{%- endmacro %}


{#- A JSON object (as text) of the given text columns, e.g. Bitrix24's UF_* user fields; null
    when there are none. -#}
{% macro json_object_of(columns) -%}
    {%- if columns | length == 0 -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        {{ return(adapter.dispatch('json_object_of', 'voronka')(columns)) }}
    {%- endif -%}
{%- endmacro %}

{% macro postgres__json_object_of(columns) -%}
    cast(json_build_object(
        {%- for name in columns %}'{{ name }}', {{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__json_object_of(columns) -%}
    cast(json_object(
        {%- for name in columns %}'{{ name }}', {{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ) as {{ dbt.type_string() }})
{%- endmacro %}


{#- A source's id in the shared id space: `<prefix>:<id>` (e.g. amocrm:1001,
    bitrix24:contact:7); empty and Bitrix24's "0" (none) -> null. Inbox ids stay as they are. -#}
{% macro namespaced_id(prefix, column) -%}
    case
        when {{ column }} is null or trim({{ column }}) in ('', '0') then null
        else '{{ prefix }}:' || trim({{ column }})
    end
{%- endmacro %}


{#- Bitrix24 stage semantics -> open / won / lost: success = won, failure = lost, process =
    open; unknown semantics: the fixed stage ids WON and LOSE (also C<n>:WON, C<n>:LOSE). The
    one-letter STAGE_SEMANTIC_ID of deals and the stage history (S, F, P) is read the same. -#}
{% macro bitrix24_stage_type(semantics, stage_id) -%}
    case
        when lower({{ semantics }}) in ('success', 's') then 'won'
        when lower({{ semantics }}) in ('failure', 'f') then 'lost'
        when lower({{ semantics }}) in ('process', 'p') then 'open'
        when {{ stage_id }} = 'WON' or {{ stage_id }} like '%:WON' then 'won'
        when {{ stage_id }} = 'LOSE' or {{ stage_id }} like '%:LOSE' then 'lost'
        else 'open'
    end
{%- endmacro %}


{#- A select of the Bitrix24 records of `table` (deals, contacts, companies, activities) that a
    live-id pass has seen vanish (raw `<table>_deletions`, decision D100), one row per id from
    its latest event: deleted_at, the time that pass saw it vanish from the list (Bitrix24 gives
    no deletion time), null when the latest event is `restored` (listed again); and
    event_loaded_at, that event's load, which the staging model takes as the record's load when
    it is newer (a restored record comes back with the load that restored it, D85). -#}
{% macro bitrix24_deletion_events(table) -%}
    select id, deleted_at, event_loaded_at
    from (
        select
            id,
            case when event = 'deleted' then {{ parse_timestamp_utc('observed_at') }} end as deleted_at,
            _loaded_at as event_loaded_at,
            row_number() over (
                partition by id order by observed_at desc, _loaded_at desc
            ) as event_rank
        from (
            {{ raw_source('bitrix24', table ~ '_deletions', ['id', 'event', 'observed_at']) }}
        ) as events
    ) as ranked_events
    where event_rank = 1
{%- endmacro %}


{#- A record's load time given its deletion events (bitrix24_deletion_events joined as
    `events_alias`): the later of its version's load and its latest event's load. -#}
{% macro bitrix24_loaded_at(loaded_at, events_alias) -%}
    case
        when {{ events_alias }}.event_loaded_at > {{ loaded_at }} then {{ events_alias }}.event_loaded_at
        else {{ loaded_at }}
    end
{%- endmacro %}


{#- A Bitrix24 user's extension: the internal number (UF_PHONE_INNER), else bitrix24:<id> -#}
{% macro bitrix24_extension(inner_number, user_id) -%}
    coalesce(nullif(trim({{ inner_number }}), ''), {{ namespaced_id('bitrix24', user_id) }})
{%- endmacro %}


{#- Whether the incremental model's existing table lacks any of `columns` (a warehouse built
    before they were added, e.g. source_system): the model then recomputes every row instead of
    the new ones, so that `append_new_columns` leaves no old row with a null. False while
    parsing, on a first build and in dbt unit tests. -#}
{% macro lacks_columns(columns) -%}
    {%- if not execute or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set present = [] -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
        {%- do present.append(column.name | lower) -%}
    {%- endfor -%}
    {%- for name in columns if name | lower not in present -%}
        {{ return(true) }}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}


{#- `select '<source_system>' as source_system, <columns> from <relation>` for each
    (source_system, relation) pair, joined by `union all`: the body of the
    intermediate/sources unions. `missing` maps a source_system to the columns its relation
    lacks and the expression standing in for each (e.g. a typed null). -#}
{% macro union_sources(columns, sources, missing={}) -%}
    {%- for source_system, relation in sources %}
    {%- set stand_ins = missing.get(source_system, {}) %}
    select
        '{{ source_system }}' as source_system,
        {%- for column in columns %}
        {% if column in stand_ins %}{{ stand_ins[column] }} as {% endif %}{{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#- The id of an amoCRM lead's main contact in its `_embedded` (JSON text): the contact marked
    `is_main`, else (none marked) the first linked one; null without contacts (D95). -#}
{% macro amocrm_main_contact_id(column) -%}
    {{ return(adapter.dispatch('amocrm_main_contact_id', 'voronka')(column)) }}
{%- endmacro %}

{% macro postgres__amocrm_main_contact_id(column) -%}
    (
        select contact.value ->> 'id'
        from jsonb_array_elements(cast({{ column }} as jsonb) -> 'contacts')
            with ordinality as contact(value, position)
        order by case when contact.value ->> 'is_main' = 'true' then 0 else 1 end, contact.position
        limit 1
    )
{%- endmacro %}

{% macro duckdb__amocrm_main_contact_id(column) -%}
    (
        select json_extract_string(contact.value, '$.id')
        from json_each({{ column }}, '$.contacts') as contact
        order by
            case when json_extract_string(contact.value, '$.is_main') = 'true' then 0 else 1 end,
            cast(contact.key as integer)
        limit 1
    )
{%- endmacro %}


{#- The deleted records among amoCRM's deletion signals (D96): `signals` is a relation of
    `key_columns`, `signal_epoch` (unix seconds), `signal_at` (its timestamp) and `is_deletion`
    (1: a `*_deleted` event or a version in the trash; 0: a `*_restored` event or a live
    version). A record is deleted when its latest signal is a deletion (a deletion wins a tie: the
    trash keeps the last live version's updated_at); deleted_at is that signal's time. -#}
{% macro amocrm_deletions(signals, key_columns) -%}
    select
        {{ key_columns | join(', ') }},
        signal_at as deleted_at
    from (
        select
            *,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by signal_epoch desc, is_deletion desc
            ) as signal_rank
        from {{ signals }}
    ) as ranked_signals
    where signal_rank = 1 and is_deletion = 1
{%- endmacro %}
