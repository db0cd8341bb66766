-- analytics.usa.gov report rows: one per agency x report x day x dimension value.
with

source as (
    select * from {{ source('raw', 'web_analytics') }} as delivered
    where {{ not_held('delivered') }}
),

renamed as (
    select
        agency_code,
        report_name,
        report_date,
        domain,
        page,
        lower(device) as device,
        visits,
        pageviews,
        _source_file as source_file
    from source
)

select * from renamed
