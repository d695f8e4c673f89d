{#- Publishing a mart or finance table on PostgreSQL without making a reader wait (D171).

    dbt's table materialization builds `<table>__dbt_tmp` and, in one transaction, renames the
    old table away and the new one in. Readers never see a half-built table, but the rename takes
    an ACCESS EXCLUSIVE lock: it waits for every query still reading the old table (a dashboard's
    long query), and every new query of that table queues behind the waiting rename, so readers
    wait for one another through the run.

    Here, for the models whose `meta` says `publish: in_place` (the folders marts and finance,
    dbt_project.yml), a rebuild of an existing table builds the new rows beside, as dbt does,
    and when their columns and types are the old table's, deletes the old rows and inserts the
    new ones in the same transaction, then drops the table beside. Its locks (ROW EXCLUSIVE) never conflict with a reader's (ACCESS SHARE): the
    run does not wait for readers and readers do not wait for the run; a query sees the whole
    old table or, once the transaction commits, the whole new one (MVCC). The old rows' space is
    reclaimed by autovacuum.

    dbt's own path (build beside, rename in one transaction) stays for a first build, a full
    refresh, a view, a model without the meta, and a rebuild whose columns or types changed (an
    upgrade: the renames then wait for the readers of the old table, once). DuckDB keeps dbt's
    materialization: its readers open the published file, never the working copy (D80). -#}
{% materialization table, adapter='postgres' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set publish = (config.get('meta') or {}).get('publish') -%}
    {%- if publish != 'in_place' or existing_relation is none or existing_relation.type != 'table'
            or should_full_refresh() -%}
        {{ return(materialization_table_default()) }}
    {%- endif -%}

    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
    {%- set grant_config = config.get('grants') -%}
    {{ drop_relation_if_exists(intermediate_relation) }}
    {{ drop_relation_if_exists(backup_relation) }}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- the new rows, beside (dbt's `__dbt_tmp`, with the contract's column types) -#}
    {%- call statement('build_beside') -%}
        {{ get_create_table_as_sql(False, intermediate_relation, sql) }}
    {%- endcall -%}

    {%- set new_columns = _published_columns(intermediate_relation) -%}
    {%- set in_place = _published_columns(target_relation) == new_columns -%}
    {%- if in_place -%}
        {%- set column_list = [] -%}
        {%- for name, data_type in new_columns -%}
            {%- do column_list.append(adapter.quote(name)) -%}
        {%- endfor -%}
        {%- call statement('main') -%}
            delete from {{ target_relation }};
            insert into {{ target_relation }} ({{ column_list | join(', ') }})
            select {{ column_list | join(', ') }} from {{ intermediate_relation }}
        {%- endcall -%}
    {%- else -%}
        {#- the columns changed: dbt's swap -#}
        {%- call statement('main') -%}
            select 'swapped' as published
        {%- endcall -%}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
    {%- endif -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do apply_grants(target_relation, grant_config, should_revoke=in_place) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ adapter.commit() }}

    {#- no reader opens either: dropping them waits for no one -#}
    {{ drop_relation_if_exists(intermediate_relation if in_place else backup_relation) }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- A table's columns as (name, exact type) pairs in order: numeric(18,2) and numeric differ -#}
{% macro _published_columns(relation) -%}
    {%- set rows = run_query(
        "select attname, format_type(atttypid, atttypmod) from pg_catalog.pg_attribute "
        ~ "where attrelid = '" ~ relation.include(database=false) ~ "'::regclass and attnum > 0 and not attisdropped "
        ~ "order by attnum"
    ).rows -%}
    {%- set columns = [] -%}
    {%- for row in rows -%}
        {%- do columns.append((row[0], row[1])) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
