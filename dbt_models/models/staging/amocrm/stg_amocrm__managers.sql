{#- One row per amoCRM user version (the users snapshot adds a row when a user changes; its
    updated_at is when it was loaded), in the inbox managers' columns. team: the user's first
    group, else "amoCRM". extension: the user's id (amocrm:<id>), which amoCRM call notes name
    as manager_extension (amoCRM knows no PBX extensions). -#}

with

source as (
    {{ raw_source('amocrm', 'users', ['id', 'name', 'email', '_embedded']) }}
),

final as (
    select
        ---------- ids
        {{ namespaced_id('amocrm', 'id') }} as manager_id,
        ---------- attributes
        name as full_name,
        coalesce({{ json_text('_embedded', ['groups', 0, 'name']) }}, 'amoCRM') as team,
        'sales' as role,
        {{ namespaced_id('amocrm', 'id') }} as extension,
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
