{#- One row per Bitrix24 user version (user.get snapshot: a changed user adds a row; its
    updated_at is when it was loaded), in the inbox managers' columns. extension: the user's
    internal number (UF_PHONE_INNER), which PBX calls (Mango, CDR, the inbox) name; without one
    bitrix24:<id>, which Bitrix24's own call statistics then name (stg_bitrix24__calls). team:
    the user's first department (bitrix24:department:<id>), else "Bitrix24". -#}

with

source as (
    {{ raw_source('bitrix24', 'users', [
        'id', 'name', 'last_name', 'email', 'uf_phone_inner', 'uf_department',
    ]) }}
),

final as (
    select
        ---------- ids
        {{ namespaced_id('bitrix24', 'id') }} as manager_id,
        ---------- attributes
        nullif(trim(coalesce(name, '') || ' ' || coalesce(last_name, '')), '') as full_name,
        coalesce(
            {{ namespaced_id('bitrix24:department', json_text('uf_department', [0])) }},
            'Bitrix24'
        ) as team,
        'sales' as role,
        {{ bitrix24_extension('uf_phone_inner', 'id') }} as extension,
        lower(email) as email,
        ---------- dates
        cast(null as date) as hired_on,
        cast(null as date) as left_on,
        ---------- timestamps
        _loaded_at as updated_at,
        ---------- load metadata
        {{ api_load_metadata() }}
    from source
    where id is not null
)

select * from final
