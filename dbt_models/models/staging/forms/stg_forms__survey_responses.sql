{#- One row per survey response of the mapped form exports (raw_forms.survey_responses: the
    inbox survey_responses contract, checked by the loader, one row per response_id), typed like
    stg_inbox__survey_responses. response_id: forms:<response_id>. client_id, deal_id,
    request_id and manager_id stay as the form gave them: a form's columns name the ids the
    user knows, matched against every source's ids (a phone or an e-mail matches any source's
    client). -#}

with

source as (
    {{ raw_source('forms', 'survey_responses', [
        'response_id', 'survey_type', 'score', 'responded_at', 'client_id', 'client_phone',
        'client_email', 'deal_id', 'request_id', 'manager_id', 'comment',
    ], meta=file_meta_columns()) }}
),

final as (
    select
        ---------- ids
        {{ namespaced_id('forms', 'response_id') }} as response_id,
        client_id,
        deal_id,
        request_id,
        manager_id,
        ---------- attributes
        {{ parse_enum('survey_type') }} as survey_type,
        {{ parse_integer('score') }} as score,
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        lower(client_email) as client_email,
        comment,
        ---------- timestamps
        {{ parse_timestamp_utc('responded_at') }} as responded_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _loaded_at as _last_loaded_at
    from source
)

select * from final
