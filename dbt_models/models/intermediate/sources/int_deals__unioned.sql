{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_unioned_rows(source('inbox', 'deals'), 'deal_id') }}",
        post_hook=[
            "{{ keep_inputs_seen([source('inbox', 'deals')]) }}",
            "{{ keep_removals_seen() }}",
            "{{ keep_staging_seen(ref('stg_inbox__deals'), source('inbox', 'deals'), 'inbox') }}",
        ]
    )
}}

{#- One row per deal of every CRM source: the inbox's, amoCRM's leads and Bitrix24's deals,
    in the inbox's columns.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A disabled source adds nothing.
    A table, not a view (decision D61): fct_deals, fct_deal_stage_changes, fct_survey_responses
    and int_deal_manager_periods read it, and as a view each of them redid the newest-version
    ranking of every deal's history.
    deleted_at carried as every source gives them; core drops
    deleted records (D85).
    Incremental per key (D340, macros/unioned_incremental.sql): the inbox deals with a raw row
    loaded since the last build are ranked again, every other inbox row is kept; the API
    sources' rows are computed again in full; in full after a removal (D205).
    Its inbox rows are the rows of stg_inbox__deals: it keeps what they were built from, and the
    view's Great Expectations suite reads them here while that holds (D408). -#}

{%- set since = deal_rebuild_since() %}

with

inbox_deals as (
    {{ inbox_rows_to_build(ref('stg_inbox__deals'), source('inbox', 'deals'), 'deal_id', since) }}
),

unioned as (
    {{ union_sources(
        columns=[
            'deal_id',
            'client_id',
            'manager_id',
            'pipeline',
            'stage',
            'status',
            'channel',
            'loss_reason',
            'amount',
            'currency',
            'created_at',
            'closed_at',
            'updated_at',
            'deleted_at',
            'custom_fields',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
        ],
        sources=[
            ('inbox', 'inbox_deals'),
            ('amocrm', ref('stg_amocrm__deals')),
            ('bitrix24', ref('stg_bitrix24__deals')),
        ],
        missing={'inbox': {'custom_fields': 'cast(null as ' ~ dbt.type_string() ~ ')'}}
    ) }}
)

select * from unioned
