-- One row per contact: call, chat or 311 service request, times in UTC. Contact type, outcome and
-- status stay as delivered; their *_label (trimmed, lower case) is what the synonym seeds match.
with

source as (
    select * from {{ source('raw', 'contacts') }} as delivered
    where {{ not_held('delivered') }}
),

renamed as (
    select
        -- ids
        agency_code || ':' || contact_id as contact_key,
        contact_id,
        agency_code,
        customer_key,
        -- dimensions
        contact_type,
        {{ label_key('contact_type') }} as contact_type_label,
        service_code,
        {{ label_key('channel_code') }} as channel_label,
        reason_code,
        outcome,
        {{ label_key('outcome') }} as outcome_label,
        status,
        {{ label_key('status') }} as status_label,
        -- measures
        queue_wait_seconds,
        handle_seconds,
        -- timestamps (UTC)
        opened_at,
        closed_at,
        -- lineage
        feed_name,
        _period as delivery_period,
        _source_file as source_file,
        _row_number as source_row_number
    from source
)

select * from renamed
