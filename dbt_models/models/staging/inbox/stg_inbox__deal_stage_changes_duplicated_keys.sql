{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_keys_if_built_in_full() }}",
        post_hook=[
            "{{ keep_inputs_seen([source('inbox', 'deal_stage_changes')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- The change_ids loaded more than once, each once: which rows stg_inbox__deal_stage_changes ranks (its
    deduplication, first_loaded_copies). An incremental table, not a view as the rest of staging
    (D402): a daily run groups only the keys with a raw row loaded since its last build, where a
    view grouped every raw row on each read (macros/dedup.sql, keys_loaded_more_than_once); in
    full after a removal (D205) or other code (D320). -#}

{{ keys_loaded_more_than_once(source('inbox', 'deal_stage_changes'), 'change_id', deal_rebuild_since()) }}
