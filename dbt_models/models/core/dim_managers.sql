{#- One row per manager version: a version starts when the manager's team, role or extension
    changes (in updated_at order) and is valid from that updated_at until the next version's
    (valid_to null for the current one). Rows of the inbox that repeat the same team, role and
    extension with a newer updated_at continue the version they repeat.

    Name, e-mail, hire and leave dates are the manager's latest (corrections apply to all of
    history). The first version's valid_from is when the manager was first seen; callers that
    need a manager before that treat the first version as valid since always (is_first_version). -#}

with

managers as (
    select * from {{ ref('int_managers__unioned') }}
),

previous_values as (
    select
        manager_id,
        team,
        role,
        extension,
        updated_at,
        _loaded_at,
        lag(updated_at) over (partition by manager_id order by updated_at) as previous_updated_at,
        lag(team) over (partition by manager_id order by updated_at) as previous_team,
        lag(role) over (partition by manager_id order by updated_at) as previous_role,
        lag(extension) over (partition by manager_id order by updated_at) as previous_extension
    from managers
),

version_starts as (
    select
        *,
        case
            when previous_updated_at is null then 1
            when (team is distinct from previous_team) then 1
            when (role is distinct from previous_role) then 1
            when (extension is distinct from previous_extension) then 1
            else 0
        end as is_version_start
    from previous_values
),

version_numbers as (
    select
        *,
        sum(is_version_start) over (
            partition by manager_id
            order by updated_at
            rows between unbounded preceding and current row
        ) as version_number
    from version_starts
),

versions as (
    select
        manager_id,
        version_number,
        team,
        role,
        extension,
        min(updated_at) as valid_from,
        max(_loaded_at) as _loaded_at
    from version_numbers
    group by 1, 2, 3, 4, 5
),

validity_ranges as (
    select
        *,
        lead(valid_from) over (partition by manager_id order by valid_from) as valid_to
    from versions
),

latest_rows as (
    select
        manager_id,
        source_system,
        full_name,
        email,
        hired_on,
        left_on,
        row_number() over (
            partition by manager_id
            order by updated_at desc
        ) as recency_rank
    from managers
),

latest_attributes as (
    select * from latest_rows
    where recency_rank = 1
),

final as (
    select
        ---------- ids
        (
            validity_ranges.manager_id
            || '#' || cast(validity_ranges.version_number as {{ dbt.type_string() }})
        ) as manager_version_id,
        validity_ranges.manager_id,
        -- inbox, amocrm or bitrix24
        latest_attributes.source_system,
        cast(validity_ranges.version_number as {{ dbt.type_int() }}) as version_number,
        ---------- the manager (latest values)
        latest_attributes.full_name,
        latest_attributes.email,
        latest_attributes.hired_on,
        latest_attributes.left_on,
        ---------- the version
        validity_ranges.team,
        validity_ranges.role,
        validity_ranges.extension,
        validity_ranges.valid_from,
        validity_ranges.valid_to,
        validity_ranges.valid_to is null as is_current,
        validity_ranges.version_number = 1 as is_first_version,
        ---------- load metadata
        validity_ranges._loaded_at
    from validity_ranges
    inner join latest_attributes
        on validity_ranges.manager_id = latest_attributes.manager_id
)

select * from final
