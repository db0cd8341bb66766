-- Web analytics per agency x report x domain x page x device x day, device mapped to a channel.
with

web as (
    select * from {{ ref('stg_web__analytics') }}
)

select
    agency_code,
    report_name,
    report_date,
    {{ dbt.date_trunc('month', 'report_date') }} as report_month,
    -- "domain" is analytics.usa.gov's own field name
    coalesce(domain, '(all)') as domain,  -- noqa: RF04
    coalesce(page, '(all)') as page,
    coalesce(device, '(all)') as device,
    case
        when device = 'desktop' then 'web'
        when device in ('mobile', 'tablet') then 'mobile'
        else 'other_digital'
    end as channel_code,
    cast(visits as bigint) as visits,
    cast(pageviews as bigint) as pageviews
from web
