-- Per agency and feed: what was delivered, how much got through, and whether the next
-- delivery is late or periods are missing. Judged as of var('as_of_date') (default today).
with

log as (
    select * from {{ source('raw', 'ingest_log') }}
),

cadence as (
    select * from {{ ref('feed_cadence') }}
),

per_feed as (
    select
        agency_code,
        feed_name,
        max(feed_kind) as feed_kind,
        sum(case when status = 'loaded' then 1 else 0 end) as files_loaded,
        sum(case when status = 'rejected' then 1 else 0 end) as files_rejected,
        sum(case when status = 'superseded' then 1 else 0 end) as files_superseded,
        -- held: delivered but left out of the warehouse (cxw deliveries hold, or a failed check)
        sum(case when status = 'held' then 1 else 0 end) as files_held,
        sum(case when status = 'loaded' then rows_in else 0 end) as rows_in,
        sum(case when status = 'loaded' then rows_loaded else 0 end) as rows_loaded,
        sum(case when status = 'loaded' then rows_quarantined else 0 end) as rows_quarantined,
        -- a held delivery was delivered: its period is neither missing nor late
        min(case when status in ('loaded', 'held') then period end) as first_period,
        max(case when status in ('loaded', 'held') then period end) as last_period,
        count(distinct case when status in ('loaded', 'held') then period end) as periods_delivered,
        max(loaded_at) as last_delivery_at
    from log
    group by agency_code, feed_name
),

judged as (
    select
        per_feed.*,
        cadence.cadence_months,
        cadence.grace_days,
        cast(per_feed.last_period || '-01' as date) as last_period_start,
        {% if var('as_of_date') %}cast('{{ var("as_of_date") }}' as date){% else %}current_date{% endif %}
            as as_of_date,
        -- months from the first delivered period to the last
        (
            cast(substr(per_feed.last_period, 1, 4) as integer) * 12
            + cast(substr(per_feed.last_period, 6, 2) as integer)
        ) - (
            cast(substr(per_feed.first_period, 1, 4) as integer) * 12
            + cast(substr(per_feed.first_period, 6, 2) as integer)
        ) as delivered_span_months
    from per_feed
    left join cadence on per_feed.agency_code = cadence.agency_code and per_feed.feed_name = cadence.feed_name
),

due as (
    select
        *,
        -- delivered periods expected between the first and the last, one per cadence step
        -- (rounded as DuckDB's cast from double does, ties to even; Spark's cast would truncate)
        cast({{ round_half_even('delivered_span_months / cadence_months + 1') }} as integer) as periods_expected,
        -- the period after the last one ends cadence_months after it starts; its file is due grace_days later
        cast(
            {{ dbt.dateadd('day', 'grace_days', dbt.dateadd('month', 'cadence_months * 2', 'last_period_start')) }}
            as date
        ) as next_delivery_due
    from judged
)

select
    agency_code,
    feed_name,
    feed_kind,
    cast(files_loaded as bigint) as files_loaded,
    cast(files_rejected as bigint) as files_rejected,
    cast(files_superseded as bigint) as files_superseded,
    cast(files_held as bigint) as files_held,
    cast(rows_in as bigint) as rows_in,
    cast(rows_loaded as bigint) as rows_loaded,
    cast(rows_quarantined as bigint) as rows_quarantined,
    cast({{ divide('100.0 * rows_quarantined', 'nullif(rows_in, 0)') }} as double) as quarantine_rate_pct,
    first_period,
    last_period,
    last_delivery_at,
    cast(greatest(periods_expected - periods_delivered, 0) as bigint) as missing_periods,
    next_delivery_due,
    as_of_date > next_delivery_due as is_late
from due
