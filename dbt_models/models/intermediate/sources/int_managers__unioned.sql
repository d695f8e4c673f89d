{#- One row per manager version of every CRM source: the inbox's managers, amoCRM's and
    Bitrix24's users.
    source_system names the origin; ids of the API sources are namespaced (amocrm:..., bitrix24:...,
    mango:..., cdr:..., forms:...), the inbox's stay as they are, so no two sources' ids collide
    (decision D41). A plain union all of views: a filter on the result (the incremental facts'
    load watermark) reaches every source's scan, and a disabled source adds nothing. -#}

with

unioned as (
    {{ union_sources(
        columns=[
            'manager_id',
            'full_name',
            'team',
            'role',
            'extension',
            'email',
            'hired_on',
            'left_on',
            'updated_at',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
        ],
        sources=[
            ('inbox', ref('stg_inbox__managers')),
            ('amocrm', ref('stg_amocrm__managers')),
            ('bitrix24', ref('stg_bitrix24__managers')),
        ]
    ) }}
)

select * from unioned
