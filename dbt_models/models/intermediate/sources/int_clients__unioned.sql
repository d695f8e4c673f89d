{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_unioned_rows(source('inbox', 'clients'), 'client_id') }}",
        post_hook=[
            "{{ keep_inputs_seen([source('inbox', 'clients')]) }}",
            "{{ keep_removals_seen() }}",
            "{{ keep_staging_seen(ref('stg_inbox__clients'), source('inbox', 'clients'), 'inbox') }}",
        ]
    )
}}

{#- One row per client of every CRM source: the inbox's, amoCRM's and Bitrix24's contacts
    and companies.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A disabled source adds nothing.
    A table, not a view (decision D61): dim_clients, fct_calls, fct_survey_responses and the
    phone and e-mail matches read it, and as a view each of them redid the newest-version
    ranking of every client's history.
    deleted_at and merged_into_client_id carried as every source gives them; core drops
    deleted records and re-points merged clients (D85).
    Incremental per key (D340, macros/unioned_incremental.sql): the inbox clients with a raw row
    loaded since the last build are ranked again, every other inbox row is kept; the API
    sources' rows are computed again in full; in full after a removal (D205).
    Its inbox rows are the rows of stg_inbox__clients: it keeps what they were built from, and the
    view's Great Expectations suite reads them here while that holds (D408). -#}

{%- set since = deal_rebuild_since() %}

with

inbox_clients as (
    {{ inbox_rows_to_build(ref('stg_inbox__clients'), source('inbox', 'clients'), 'client_id', since) }}
),

unioned as (
    {{ union_sources(
        columns=[
            'client_id',
            'client_type',
            'client_name',
            'phone',
            'phone_raw',
            'email',
            'segment',
            'acquisition_channel',
            'created_at',
            'updated_at',
            'deleted_at',
            'merged_into_client_id',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
        ],
        sources=[
            ('inbox', 'inbox_clients'),
            ('amocrm', ref('stg_amocrm__clients')),
            ('bitrix24', ref('stg_bitrix24__clients')),
        ]
    ) }}
)

select * from unioned
