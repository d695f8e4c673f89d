{#- One row per survey response of the inbox and of the form exports.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A plain union all of views: a filter on the result (the incremental facts'
    load watermark) reaches every source's scan, and a disabled source adds nothing. -#}

with

unioned as (
    {{ union_sources(
        columns=[
            'response_id',
            'client_id',
            'deal_id',
            'request_id',
            'manager_id',
            'survey_type',
            'score',
            'client_phone',
            'client_phone_raw',
            'client_email',
            'comment',
            'responded_at',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
            '_last_loaded_at',
        ],
        sources=[
            ('inbox', ref('stg_inbox__survey_responses')),
            ('forms', ref('stg_forms__survey_responses')),
        ]
    ) }}
)

select * from unioned
