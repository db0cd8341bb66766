-- Per agency and feed: what was delivered, how much got through, which values no synonym maps,
-- and whether the next delivery is late or periods are missing. Judged as of var('as_of_date')
-- (default today).
with

log as (
    select * from {{ source('raw', 'ingest_log') }}
),

cadence as (
    select * from {{ ref('feed_cadence') }}
),

contacts as (
    select * from {{ ref('fct_contact') }}
),

-- contacts whose delivered value maps onto no canonical value (seeds/*_synonyms.csv)
unmapped as (
    select
        agency_code,
        feed_name,
        sum(case when is_contact_type_unmapped then 1 else 0 end) as unmapped_contact_type_rows,
        sum(case when is_outcome_unmapped then 1 else 0 end) as unmapped_outcome_rows,
        sum(case when is_status_unmapped then 1 else 0 end) as unmapped_status_rows
    from contacts
    group by agency_code, feed_name
),

-- why a feed's files are held: who held them (operator:<user> or check:<check>) and the reason
held as (
    select
        agency_code,
        feed_name,
        {{ dbt.listagg('why', "'; '", "order by why" if target.type != 'spark' else none) }} as held_because
    from (
        select distinct
            agency_code,
            feed_name,
            status_by || ': ' || coalesce(status_reason, '') as why
        from log
        where status = {{ status('held') }}
    ) as held_files
    group by agency_code, feed_name
),

per_feed as (
    select
        agency_code,
        feed_name,
        max(feed_kind) as feed_kind,
        -- a file whose periods come from its records has a log row per period: count files, not rows
        count(distinct case when status = {{ status('loaded') }} then file_sha256 end) as files_loaded,
        count(distinct case when status = {{ status('rejected') }} then file_sha256 end) as files_rejected,
        count(distinct case when status = {{ status('superseded') }} then file_sha256 end) as files_superseded,
        -- held: delivered but left out of the warehouse (cxw deliveries hold, or a failed check)
        count(distinct case when status = {{ status('held') }} then file_sha256 end) as files_held,
        -- parked by the delivery guard: nothing of it applied until an operator accepts or rejects it
        count(distinct case when status in {{ statuses('AWAITING_REVIEW') }} then file_sha256 end)
            as files_awaiting_review,
        sum(case when status = {{ status('loaded') }} then rows_in else 0 end) as rows_in,
        sum(case when status = {{ status('loaded') }} then rows_loaded else 0 end) as rows_loaded,
        sum(case when status = {{ status('loaded') }} then rows_quarantined else 0 end) as rows_quarantined,
        -- left out by a declared exclude rule (previews, tests): rows in = loaded + quarantined + excluded
        sum(case when status = {{ status('loaded') }} then coalesce(rows_excluded, 0) else 0 end) as rows_excluded,
        -- of the loaded records, those a later delivery's correction replaced (delivery: adds, corrections)
        sum(case when status = {{ status('loaded') }} then coalesce(rows_replaced, 0) else 0 end) as rows_replaced,
        -- a held delivery, or one awaiting review, was delivered: its period is neither missing nor late
        -- (ingest/lifecycle.py: LIVE and UNPUBLISHED)
        min(case when status in {{ statuses('LIVE', 'UNPUBLISHED') }} then period end) as first_period,
        max(case when status in {{ statuses('LIVE', 'UNPUBLISHED') }} then period end) as last_period,
        count(distinct case when status in {{ statuses('LIVE', 'UNPUBLISHED') }} then period end) as periods_delivered,
        max(loaded_at) as last_delivery_at
    from log
    group by agency_code, feed_name
),

judged as (
    select
        per_feed.*,
        coalesce(unmapped.unmapped_contact_type_rows, 0) as unmapped_contact_type_rows,
        coalesce(unmapped.unmapped_outcome_rows, 0) as unmapped_outcome_rows,
        coalesce(unmapped.unmapped_status_rows, 0) as unmapped_status_rows,
        held.held_because,
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
    left join unmapped on per_feed.agency_code = unmapped.agency_code and per_feed.feed_name = unmapped.feed_name
    left join held on per_feed.agency_code = held.agency_code and per_feed.feed_name = held.feed_name
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
    held_because,
    cast(files_awaiting_review as bigint) as files_awaiting_review,
    cast(rows_in as bigint) as rows_in,
    cast(rows_loaded as bigint) as rows_loaded,
    cast(rows_quarantined as bigint) as rows_quarantined,
    cast(rows_excluded as bigint) as rows_excluded,
    cast(rows_replaced as bigint) as rows_replaced,
    cast({{ divide('100.0 * rows_quarantined', 'nullif(rows_in, 0)') }} as double) as quarantine_rate_pct,
    cast(unmapped_contact_type_rows as bigint) as unmapped_contact_type_rows,
    cast(unmapped_outcome_rows as bigint) as unmapped_outcome_rows,
    cast(unmapped_status_rows as bigint) as unmapped_status_rows,
    first_period,
    last_period,
    last_delivery_at,
    cast(greatest(periods_expected - periods_delivered, 0) as bigint) as missing_periods,
    next_delivery_due,
    as_of_date > next_delivery_due as is_late
from due
