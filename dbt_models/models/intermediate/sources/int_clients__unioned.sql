{{ config(materialized='table') }}

{#- One row per client of every CRM source: the inbox's, amoCRM's and Bitrix24's contacts
    and companies.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A disabled source adds nothing.
    A table, not a view (decision D61): dim_clients, fct_calls, fct_survey_responses and the
    phone and e-mail matches read it, and as a view each of them redid the newest-version
    ranking of every client's history.
    deleted_at and merged_into_client_id carried as every source gives them; core drops
    deleted records and re-points merged clients (D85). -#}

with

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
            ('inbox', ref('stg_inbox__clients')),
            ('amocrm', ref('stg_amocrm__clients')),
            ('bitrix24', ref('stg_bitrix24__clients')),
        ]
    ) }}
)

select * from unioned
