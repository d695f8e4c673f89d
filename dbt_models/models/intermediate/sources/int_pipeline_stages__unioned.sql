{#- One row per pipeline stage of every CRM source (pipelines of amoCRM and Bitrix24 are
    prefixed amocrm: / bitrix24:, so no two sources share one).
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A plain union all of views: a filter on the result (the incremental facts'
    load watermark) reaches every source's scan, and a disabled source adds nothing. -#}

with

unioned as (
    {{ union_sources(
        columns=[
            'pipeline',
            'stage',
            'stage_order',
            'stage_type',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
        ],
        sources=[
            ('inbox', ref('stg_inbox__pipeline_stages')),
            ('amocrm', ref('stg_amocrm__pipeline_stages')),
            ('bitrix24', ref('stg_bitrix24__pipeline_stages')),
        ]
    ) }}
)

select * from unioned
