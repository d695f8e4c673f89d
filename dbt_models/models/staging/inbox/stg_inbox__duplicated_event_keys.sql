{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_keys_if_built_in_full(duplicated_event_tables()) }}",
        post_hook="{{ keep_removals_seen() }}"
    )
}}

{#- The keys of the inbox's event tables loaded more than once, each once (event_table: calls,
    deal_stage_changes, survey_responses; event_key: its call_id, change_id, response_id), and
    per table the newest load this build read (a row without a key, loaded_until): which rows
    stg_inbox__calls, stg_inbox__deal_stage_changes and stg_inbox__survey_responses rank (their
    deduplication, first_loaded_copies: these keys and every key loaded after loaded_until). The
    activities' keys with several rows too (event_table activities, event_key the activity_id),
    whose versions stg_inbox__activities ranks (split_versioned_rows, D416). An incremental
    table, not a view as the rest of staging (D402): a daily run groups only the keys with a raw
    row loaded since its last build, where each view grouped every raw row on each read
    (macros/dedup.sql, keys_loaded_more_than_once); in full after a removal (D205) or other code
    (D320). One model for the four tables: a dbt node costs more than the grouping of a day's
    keys. -#}

{%- set tables = duplicated_event_tables() %}

{{ keys_loaded_more_than_once(tables, duplicated_keys_since(tables)) }}
