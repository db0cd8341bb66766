-- Demand by channel per agency and month: is it moving to digital? Two sources, each its own
-- whole: contacts (calls, chats, 311 requests) and web visits (by device).
with

contacts as (
    select
        agency_code,
        opened_month as month_start,
        channel_code,
        'contacts' as demand_source,
        count(*) as interactions
    from {{ ref('fct_contact') }}
    group by agency_code, opened_month, channel_code
),

web as (
    select
        agency_code,
        report_month as month_start,
        channel_code,
        'web_visits' as demand_source,
        sum(visits) as interactions
    from {{ ref('fct_web_daily') }}
    where report_name = 'devices'
    group by agency_code, report_month, channel_code
),

unioned as (
    select * from contacts
    union all
    select * from web
),

{%- set per_month = 'partition by unioned.agency_code, unioned.month_start, unioned.demand_source' %}

final as (
    select
        unioned.agency_code,
        cast(unioned.month_start as date) as month_start,
        unioned.demand_source,
        unioned.channel_code,
        channels.is_digital,
        cast(unioned.interactions as bigint) as interactions,
        {{ divide('100.0 * unioned.interactions', 'sum(unioned.interactions) over (' ~ per_month ~ ')') }}
            as share_pct,
        {{ divide(
            '100.0 * sum(case when channels.is_digital then unioned.interactions else 0 end) over (' ~ per_month ~ ')',
            'sum(unioned.interactions) over (' ~ per_month ~ ')'
        ) }} as digital_share_pct
    from unioned
    left join {{ ref('dim_channel') }} as channels on unioned.channel_code = channels.channel_code
)

select * from final
