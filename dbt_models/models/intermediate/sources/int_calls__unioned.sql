{#- One row per call of every CRM and telephony source: the inbox's, amoCRM's call notes,
    Bitrix24's call statistics, Mango Office's and the CDR files'.
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
            'call_id',
            'direction',
            'client_phone',
            'client_phone_raw',
            'manager_extension',
            'line',
            'status',
            'ring_seconds',
            'talk_seconds',
            'started_at',
            'deleted_at',
            '_source_file',
            '_source_line',
            '_loaded_at',
            '_batch_id',
            '_last_loaded_at',
        ],
        sources=[
            ('inbox', ref('stg_inbox__calls')),
            ('amocrm', ref('stg_amocrm__calls')),
            ('bitrix24', ref('stg_bitrix24__calls')),
            ('mango', ref('stg_mango__calls')),
            ('cdr', ref('stg_cdr__calls')),
        ]
    ) }}
)

select * from unioned
