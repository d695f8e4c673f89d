{#- One row per activity of every CRM source: the inbox's, amoCRM's tasks and Bitrix24's
    activities.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A plain union all of views: a filter on the result (the incremental facts'
    load watermark) reaches every source's scan, and a disabled source adds nothing.
    deleted_at carried as every source gives them; core drops
    deleted records (D85). -#}

with

unioned as (
    {{ union_sources(
        columns=[
            'activity_id',
            'manager_id',
            'deal_id',
            'client_id',
            'activity_type',
            'outcome',
            'created_at',
            'due_at',
            'completed_at',
            'updated_at',
            'deleted_at',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
        ],
        sources=[
            ('inbox', ref('stg_inbox__activities')),
            ('amocrm', ref('stg_amocrm__activities')),
            ('bitrix24', ref('stg_bitrix24__activities')),
        ]
    ) }}
)

select * from unioned
