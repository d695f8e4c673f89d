{#- Raw rows removed after an incremental model's last build (D204-D206).

    Raw loses rows in two ways: a changed file reloaded replaces its own rows (the inbox loader,
    the CDR and forms files), and `voronka forget-file` removes a file's rows (D73). A removed
    row brings no new load, so the load watermarks cannot see it: an incremental fact would keep
    the event (or the attribution through a removed client, manager or deal version) that a
    fresh run no longer has. The code that deletes raw rows logs it in `raw._removals`, in the
    same transaction (rows a reload brings back are not counted, so a file that only grows logs
    nothing). Each incremental model that must follow keeps how many removals it had seen when
    built (`intermediate.<model>__removals_seen`, a post-hook in the same transaction as its
    rows); when the log holds another count (more; or fewer, raw emptied under it), the model
    rebuilds in full in that run: a pre-hook empties it and the model reads all its inputs, as a
    full refresh would. Any raw table counts: a
    removed client, manager or deal version changes attribution too, and removals are rare.

    The log is only appended to, so a count compares without any clock: no load time is
    compared with a log time. -#}


{#- The relation of the removals log (none when no loader has created it yet) -#}
{% macro removals_log_relation() -%}
    {{ return(adapter.get_relation(this.database, 'raw', '_removals')) }}
{%- endmacro %}


{#- The relation keeping how many removals the model had seen when last built -#}
{% macro removals_seen_relation() -%}
    {{ return(kept_relation('__removals_seen')) }}
{%- endmacro %}


{#- The number of removals logged now (0 without a log) -#}
{% macro removals_logged() -%}
    {%- set log = removals_log_relation() -%}
    {%- if log is none -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set value = run_query('select count(*) from ' ~ log).columns[0].values()[0] -%}
    {{ return(value | int) }}
{%- endmacro %}


{#- Whether raw rows were removed after the model's last build, so this run must rebuild it in
    full. False when not incremental (a first build or a full refresh reads everything anyway),
    while parsing, and in a dbt unit test. A model built before D204 has no count kept: every
    logged removal is new to it. Any other count than the kept one rebuilds, a smaller one too:
    the log only grows, so a smaller count means raw was emptied or replaced under the model
    (D205). -#}
{% macro removed_since_build() -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set logged = removals_logged() -%}
    {%- set seen = removals_seen_relation() -%}
    {%- if adapter.get_relation(seen.database, seen.schema, seen.identifier) is none -%}
        {{ return(logged > 0) }}
    {%- endif -%}
    {%- set query -%}
        select coalesce(max(removals_seen), 0) from {{ seen }}
    {%- endset -%}
    {%- set kept = run_query(query).columns[0].values()[0] | int -%}
    {{ return(logged != kept) }}
{%- endmacro %}


{#- Whether the model builds on the rows it kept: incremental, executing, not in a dbt unit test,
    and no raw rows removed since its last build (D205). When false, the model is built in full;
    the per-model conditions (D201, D320, D402) come on top of this. -#}
{% macro builds_on_kept_rows() -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(not removed_since_build()) }}
{%- endmacro %}


{#- Pre-hook: empty the model when it rebuilds after a removal, so a key no longer in its inputs
    leaves it (delete+insert replaces only the keys it inserts) -#}
{% macro delete_all_rows_if_removed() -%}
    {%- if removed_since_build() -%}
    delete from {{ this }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}


{#- Post-hook: keep how many removals the model has now seen -#}
{% macro keep_removals_seen() -%}
    {%- if not execute or this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set seen = removals_seen_relation() %}
    drop table if exists {{ seen }};
    create table {{ seen }} as
    select cast({{ removals_logged() }} as {{ dbt.type_bigint() }}) as removals_seen
    {%- endif -%}
{%- endmacro %}
