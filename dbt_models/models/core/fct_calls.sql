{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy='delete_insert_noting_months',
        month_source='started_at',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{{ forget_months_written() }}",
            "{{ delete_deleted_rows('call_id', 'select call_id from ' ~ ref('int_calls__unioned') ~ ' where deleted_at is not null') }}",
            "{{ delete_all_rows_if_removed() }}",
        ],
        post_hook=[
            "{{ keep_inputs_seen([ref('int_clients__unioned'), ref('int_managers__unioned')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per call, credited to the manager whose extension it was at started_at
    (kpi-definitions, "Attribution": managers.extension = calls.manager_extension) and matched to
    a client by normalised phone.

    Extension history: every manager version with an extension holds it from its valid_from
    until the manager's next version, the next holder of the same extension, or the end of the
    manager's left_on day, whichever comes first. The first holder of an extension holds it since
    always: a manager list first exported after the calls began still credits those calls.

    Incremental: calls loaded since the last build, plus the calls whose client or manager may
    have changed since (phones of clients loaded since, and of the clients those were matched to;
    extensions of managers loaded since), those taken from the fact's own rows (D200). Clients
    and managers count as loaded since when loaded after the last build (D201). A full refresh
    gives the same rows. Times in UTC;
    date, hour and month in the business time zone.

    A call deleted in its source is not here (D85): the pre-hook removes the rows of calls
    deleted since, and a restored call comes back with the load that restored it. After raw
    rows were removed (a reloaded file without some of its rows, forget-file), the run rebuilds
    it in full (macros/removals.sql, D205).

    Its strategy notes the months of the rows it writes, and a build as a table forgets them, for
    the month fingerprints (macros/months_written.sql, D415). -#}

with

calls as (
    select * from {{ ref('int_calls__unioned') }}
),

managers as (
    select * from {{ ref('dim_managers') }}
),

client_phones as (
    select * from {{ ref('int_client_phones_matched') }}
),

clients as (
    select * from {{ ref('int_clients__unioned') }}
),

manager_versions as (
    select * from {{ ref('int_managers__unioned') }}
),

{% if is_incremental() %}
{%- set watermark = loaded_watermark() %}
{%- set recompute_all = lacks_columns(['source_system']) or removed_since_build() %}
{%- set inputs_since = inputs_watermark(watermark) %}
{%- set inputs_changed = loaded_since([ref('int_clients__unioned'), ref('int_managers__unioned')], inputs_since) %}
changed_clients as (
    select
        client_id,
        phone
    from clients
    where _loaded_at > {{ inputs_since }}
),

changed_phones as (
    select phone from changed_clients
    where phone is not null
    union
    select previous_calls.client_phone as phone
    from {{ this }} as previous_calls
    inner join changed_clients
        on previous_calls.client_id = changed_clients.client_id
),

changed_extensions as (
    select distinct managers.extension
    from managers
    inner join manager_versions
        on managers.manager_id = manager_versions.manager_id
    where manager_versions._loaded_at > {{ inputs_since }}
        and managers.extension is not null
),
{% endif %}

loaded_calls as (
    select * from calls
    where {{ is_live('calls') }}
        {% if is_incremental() and not recompute_all %}
        and calls._last_loaded_at > {{ watermark }}
        {% endif %}
),

{% if is_incremental() and not recompute_all and inputs_changed %}
{#- The calls built before whose client or manager may have changed are credited again from
    their own rows, not read again through staging: a call's staged columns change only with a
    new load of its key (loaded_calls), and staging read without the load filter parses and
    deduplicates all of history (D200). -#}
recredited_calls as (
    select
        previous_calls.call_id,
        previous_calls.source_system,
        previous_calls.direction,
        previous_calls.status,
        previous_calls.client_phone,
        previous_calls.manager_extension,
        previous_calls.line,
        previous_calls.ring_seconds,
        previous_calls.talk_seconds,
        previous_calls.started_at,
        previous_calls._source_file,
        previous_calls._source_line,
        previous_calls._loaded_at,
        previous_calls._last_loaded_at
    from {{ this }} as previous_calls
    where (
        previous_calls.client_phone in (select phone from changed_phones)
        or previous_calls.manager_extension in (select extension from changed_extensions)
    )
    and not exists (
        select 1 from loaded_calls
        where loaded_calls.call_id = previous_calls.call_id
    )
),

new_calls as (
    select
        call_id,
        source_system,
        direction,
        status,
        client_phone,
        manager_extension,
        line,
        ring_seconds,
        talk_seconds,
        started_at,
        _source_file,
        _source_line,
        _loaded_at,
        _last_loaded_at
    from loaded_calls
    union all
    select * from recredited_calls
),
{% else %}
new_calls as (
    select * from loaded_calls
),
{% endif %}

extension_versions as (
    select
        manager_id,
        extension,
        valid_from,
        valid_to,
        -- the manager's last day ends at the next midnight of the business time zone
        {{ from_business_time(dbt.dateadd('day', 1, 'left_on')) }} as left_at,
        row_number() over (
            partition by extension
            order by valid_from, manager_id
        ) as holder_number,
        lead(valid_from) over (
            partition by extension
            order by valid_from, manager_id
        ) as next_holder_from
    from managers
    where extension is not null
),

extension_holders as (
    select
        manager_id,
        extension,
        case when holder_number > 1 then valid_from end as held_from,
        least(valid_to, next_holder_from, left_at) as held_to
    from extension_versions
),

joined as (
    select
        ---------- ids
        new_calls.call_id,
        -- inbox, amocrm, bitrix24, mango or cdr
        new_calls.source_system,
        extension_holders.manager_id,
        client_phones.client_id,
        ---------- attributes
        new_calls.direction,
        new_calls.status,
        new_calls.direction = 'inbound' as is_inbound,
        new_calls.direction = 'outbound' as is_outbound,
        new_calls.status = 'answered' as is_answered,
        new_calls.client_phone,
        new_calls.manager_extension,
        new_calls.line,
        ---------- numerics
        new_calls.ring_seconds,
        new_calls.talk_seconds,
        ---------- timestamps (UTC) and their date, hour, month (business time zone)
        new_calls.started_at,
        {{ business_date('new_calls.started_at') }} as call_date,
        {{ business_hour('new_calls.started_at') }} as call_hour,
        {{ business_month('new_calls.started_at') }} as call_month,
        ---------- load metadata
        new_calls._source_file,
        new_calls._source_line,
        new_calls._loaded_at,
        new_calls._last_loaded_at
    from new_calls
    left join extension_holders
        on new_calls.manager_extension = extension_holders.extension
        and (extension_holders.held_from is null or extension_holders.held_from <= new_calls.started_at)
        and (extension_holders.held_to is null or new_calls.started_at < extension_holders.held_to)
    left join client_phones
        on new_calls.client_phone = client_phones.phone
),

final as (
    select * from joined
)

select * from final
