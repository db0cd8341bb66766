-- One row per contact: call, chat or 311 service request, times in UTC.
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
        service_code,
        lower(trim(channel_code)) as channel_label,
        reason_code,
        upper(trim(outcome)) as outcome,
        status,
        -- measures
        queue_wait_seconds,
        handle_seconds,
        -- timestamps (UTC)
        opened_at,
        closed_at,
        cast(opened_at as date) as opened_date,
        -- lineage
        feed_name,
        _period as delivery_period,
        _source_file as source_file,
        _row_number as source_row_number
    from source
)

select * from renamed
