{#- One row per deal stage change of every CRM source: the inbox's, amoCRM's
    lead_status_changed events and Bitrix24's stage history.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A plain union all of views: a filter on the result (the incremental facts'
    load watermark) reaches every source's scan, and a disabled source adds nothing. -#}

with

unioned as (
    {{ union_sources(
        columns=[
            'change_id',
            'deal_id',
            'manager_id',
            'from_stage',
            'to_stage',
            'changed_at',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
            '_last_loaded_at',
        ],
        sources=[
            ('inbox', ref('stg_inbox__deal_stage_changes')),
            ('amocrm', ref('stg_amocrm__deal_stage_changes')),
            ('bitrix24', ref('stg_bitrix24__deal_stage_changes')),
        ]
    ) }}
)

select * from unioned
