-- Web analytics per agency x report x domain x page x device x day, device mapped to a channel
-- through seeds/channel_synonyms.csv, the home of channel labels, as int_channels__resolved maps
-- the survey and contact feeds' labels: the agency's own row first, then the shared one ('*').
-- A device no row names (or no device: a report without that dimension) is a visit to a
-- website all the same: other_digital, not unknown.
with

web as (
    select * from {{ ref('stg_web__analytics') }}
),

synonyms as (
    select
        agency_code,
        {{ label_key('source_label') }} as source_label,
        channel_code
    from {{ ref('channel_synonyms') }}
)

select
    web.agency_code,
    web.report_name,
    web.report_date,
    {{ dbt.date_trunc('month', 'web.report_date') }} as report_month,
    -- "domain" is analytics.usa.gov's own field name
    coalesce(web.domain, '(all)') as domain,  -- noqa: RF04
    coalesce(web.page, '(all)') as page,
    coalesce(web.device, '(all)') as device,
    coalesce(own.channel_code, shared.channel_code, 'other_digital') as channel_code,
    cast(web.visits as bigint) as visits,
    cast(web.pageviews as bigint) as pageviews
from web
left join synonyms as own
    on web.agency_code = own.agency_code and {{ label_key('web.device') }} = own.source_label
left join synonyms as shared
    on shared.agency_code = '*' and {{ label_key('web.device') }} = shared.source_label
