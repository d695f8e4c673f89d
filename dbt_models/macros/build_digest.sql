{#- An incremental table never keeps rows computed by other code or settings (D320).

    An incremental model (materialized='incremental': the month-incremental marts of D11, the
    facts kept by load watermarks, kpi_calls_hourly, and any new one) keeps the rows of its
    earlier runs. The fingerprints and watermarks that decide what to recompute see new data,
    not a new formula: after an upgrade of Voronka (a model's SQL, a macro, a seed) or a change
    of a setting, the rows not recomputed would keep the old values. So each incremental model
    keeps the digest of what it was built by, in `intermediate.<model>__build_digest` (one row,
    written by the post-hook `keep_build_digest` in the same transaction as its rows), and when
    this run's digest differs, or none is kept (a warehouse built before D320), the model is
    built as by `dbt build --full-refresh` in that run.

    How: `should_full_refresh()` below overrides dbt's macro of that name (a macro of the root
    project wins over dbt's own). dbt's `is_incremental()` and the incremental materialization
    both ask it, so the model's SQL renders as in a first build and the materialization replaces
    the table with the new rows, exactly as a full refresh does.

    A NEW INCREMENTAL MODEL NEEDS NOTHING: the post-hook is set for every model in
    dbt_project.yml (it writes nothing for a model that is not incremental), and the check is
    dbt's own `is_incremental()`. Do not call `is_incremental()` through another name.

    The digest (`build_digest()`): the file checksum and the config of the model and of every
    model and seed upstream of it (dbt's graph); the SQL of every macro the project can call (its
    own, dbt's and the adapter's: dbt records only the macros a model reached when it was parsed
    with execute = false, not those under `is_incremental()`, so all of them count); dbt's
    version; and the settings that change results (`result_settings()`). Not in it: anything of
    the run (as-of, the partition bounds: the month fingerprints hold those), paths, times, dbt's
    `.user.yml`. So two runs of the same code and settings agree, and a code change rebuilds
    only the incremental models downstream of it (a macro change: all of them, once). -#}


{#- The dbt vars that change results, apart from the run's as-of time and partition bounds;
    also hashed into the month fingerprints (int_months_fingerprinted). `business_fixed_offset`
    is not one: it only spares the macro `business_fixed_offset` its sampling of the tz
    database, the same answer. -#}
{% macro result_settings() -%}
    {{ return([
        'business_timezone',
        'successful_call_min_seconds',
        'service_level_threshold_seconds',
        'callback_window_minutes',
        'response_window_days',
        'churn_window_days',
        'developed_min_won_deals',
        'clv_max_lifetime_years',
        'amocrm_channel_field',
        'bitrix24_channel_field',
    ]) }}
{%- endmacro %}


{#- The digest of the values of `result_settings()` (an md5 in hex) -#}
{% macro settings_digest() -%}
    {%- set parts = [] -%}
    {%- for name in result_settings() -%}
        {%- do parts.append(name ~ ' ' ~ tojson(var(name), sort_keys=true)) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}


{#- The digest of what every model of this dbt invocation is built by alike: dbt's version, the
    SQL of every macro callable by name and the settings. Computed once per invocation and kept
    in dbt's `graph` (one dict shared by all nodes of the invocation; the key holds the
    invocation id): iterating the ~640 macros of the context costs more than the rest of a
    model's digest. -#}
{% macro shared_build_digest() -%}
    {%- set kept = graph.get('voronka_shared_build_digest') -%}
    {%- if kept is mapping and kept.get('invocation_id') == invocation_id -%}
        {{ return(kept['digest']) }}
    {%- endif -%}
    {%- set macros = {} -%}
    {%- for name, value in context.items() if value is not none and value.macro is defined -%}
        {%- do macros.update({value.macro.unique_id: value.macro.macro_sql}) -%}
    {%- endfor -%}
    {%- set parts = ['dbt ' ~ dbt_version, 'settings ' ~ settings_digest()] -%}
    {%- for unique_id in macros | sort -%}
        {%- do parts.append(unique_id) -%}
        {%- do parts.append(macros[unique_id]) -%}
    {%- endfor -%}
    {%- set digest = local_md5(parts | join('\n')) -%}
    {%- do graph.update({'voronka_shared_build_digest': {'invocation_id': invocation_id, 'digest': digest}}) -%}
    {{ return(digest) }}
{%- endmacro %}


{#- The digest of the code and settings the current model is built by (an md5 in hex): the
    shared part, and the file checksum and config of the model and of every model and seed
    upstream (dbt's graph; sources are data, not code). Kept in `model` (the node's dict, one
    per rendering context: the SQL's, then the materialization's) once computed. -#}
{% macro build_digest() -%}
    {%- if 'voronka_build_digest' in model -%}
        {{ return(model['voronka_build_digest']) }}
    {%- endif -%}
    {%- set parts = [shared_build_digest()] -%}
    {%- set seen = [] -%}
    {%- set queue = [model.unique_id] -%}
    {%- for unique_id in queue -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node is not none and unique_id not in seen -%}
            {%- do seen.append(unique_id) -%}
            {%- do parts.append(unique_id ~ ' ' ~ node.checksum.checksum ~ ' ' ~ tojson(node.config, sort_keys=true)) -%}
            {%- do queue.extend(node.depends_on.nodes) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do model.update({'voronka_build_digest': local_md5(parts | join('\n'))}) -%}
    {{ return(model['voronka_build_digest']) }}
{%- endmacro %}


{#- The relation keeping the digest the model was last built by -#}
{% macro build_digest_relation() -%}
    {{ return(kept_relation('__build_digest')) }}
{%- endmacro %}


{#- Whether this is an incremental model's run (not parsing, not a dbt unit test, whose `this`
    is a CTE of given rows) -#}
{% macro is_incremental_model_run() -%}
    {{ return(execute and this is defined and this is not none and model is mapping
              and model.config.materialized == 'incremental'
              and '__dbt__cte__' not in (this | string)) }}
{%- endmacro %}


{#- Whether the model's kept digest differs from this run's (or none is kept) -#}
{% macro built_by_other_code() -%}
    {%- set kept = build_digest_relation() -%}
    {%- if adapter.get_relation(kept.database, kept.schema, kept.identifier) is none -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set query -%}
        select max(build_digest) from {{ kept }}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] != build_digest()) }}
{%- endmacro %}


{#- dbt's `should_full_refresh()` (a `full_refresh` config, else the --full-refresh flag), and
    for an incremental model also when it was built by other code or settings (D320). Asked by
    dbt's `is_incremental()` and by the incremental materialization, many times per model: the
    answer is kept in `model` (the kept digest changes only in the post-hook, after the last
    question). -#}
{% macro should_full_refresh() -%}
    {%- set configured = config.get('full_refresh') -%}
    {%- if configured is not none -%}
        {{ return(configured) }}
    {%- endif -%}
    {%- if flags.FULL_REFRESH -%}
        {{ return(true) }}
    {%- endif -%}
    {%- if not is_incremental_model_run() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if 'voronka_built_by_other_code' not in model -%}
        {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
        {%- do model.update({'voronka_built_by_other_code': existing is not none and built_by_other_code()}) -%}
    {%- endif -%}
    {{ return(model['voronka_built_by_other_code']) }}
{%- endmacro %}


{#- Post-hook of every model (dbt_project.yml): an incremental model keeps the digest it was
    built by; any other model renders nothing (dbt skips an empty hook) -#}
{% macro keep_build_digest() -%}
    {%- if is_incremental_model_run() -%}
    {%- set kept = build_digest_relation() %}
    drop table if exists {{ kept }};
    create table {{ kept }} as
    select cast('{{ build_digest() }}' as {{ dbt.type_string() }}) as build_digest
    {%- endif -%}
{%- endmacro %}
