-- One row per survey respondent; free text is redacted here, before it leaves staging.
with

source as (
    select * from {{ source('raw', 'survey_responses') }} as delivered
    where {{ not_held('delivered') }}
),

renamed as (
    select
        -- ids
        agency_code || ':' || response_id as response_key,
        response_id,
        agency_code,
        -- dimensions
        service_code,
        {{ label_key('channel_code') }} as channel_label,
        -- timestamps (UTC)
        submitted_at,
        -- personal data, redacted
        {{ redact_pii('comment') }} as comment_redacted,
        -- lineage
        feed_name,
        _period as delivery_period,
        _source_file as source_file,
        _row_number as source_row_number
    from source
)

select * from renamed
