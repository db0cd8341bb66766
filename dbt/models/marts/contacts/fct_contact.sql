-- One row per contact (call, chat, 311 service request), conformed: canonical channel, shared
-- reason, outcome flags, and whether the same customer came back for the same reason.
-- Incremental: a run rebuilds its agency x delivery-period partitions and the month before (a
-- repeat contact can fall across the month boundary), reading the month after as well (an older
-- month delivered again must still see the repeats that fall into the next month).
{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ full_window_reset(lookback_months=1) }}",
    **incremental_partition_config(['agency_code', 'delivery_period'])
) }}

with

contacts as (
    select * from {{ ref('stg_contacts__contacts') }}
    where {{ partition_window_filter('agency_code', 'delivery_period', lookback_months=1, lookahead_months=1) }}
),

channels as (
    select * from {{ ref('int_channels__resolved') }}
),

reasons as (
    select
        agency_code,
        lower(source_reason) as source_reason,
        reason_code
    from {{ ref('contact_reasons') }}
),

conformed as (
    select
        -- ids
        contacts.contact_key,
        contacts.contact_id,
        contacts.customer_key,
        -- dimensions
        contacts.agency_code,
        coalesce(contacts.service_code, 'UNSPECIFIED') as service_code,
        coalesce(channels.channel_code, 'unknown') as channel_code,
        coalesce(reasons.reason_code, 'other') as reason_code,
        contacts.reason_code as source_reason,
        contacts.contact_type,
        contacts.outcome,
        contacts.status,
        -- measures
        contacts.queue_wait_seconds,
        contacts.handle_seconds,
        -- timestamps (UTC)
        contacts.opened_at,
        contacts.closed_at,
        contacts.opened_date,
        -- lineage
        contacts.delivery_period,
        contacts.source_file,
        contacts.source_row_number
    from contacts
    left join channels
        on contacts.agency_code = channels.agency_code and contacts.channel_label = channels.channel_label
    left join reasons
        on contacts.agency_code = reasons.agency_code and lower(trim(contacts.reason_code)) = reasons.source_reason
),

sequenced as (
    select
        *,
        lead(opened_at) over (
            partition by agency_code, customer_key, reason_code order by opened_at, contact_key
        ) as next_same_reason_at
    from conformed
),

final as (
    select
        contact_key,
        contact_id,
        customer_key,
        agency_code,
        service_code,
        channel_code,
        reason_code,
        source_reason,
        contact_type,
        outcome,
        status,
        -- periods
        opened_date,
        {{ dbt.date_trunc('month', 'opened_date') }} as opened_month,
        cast({{ fiscal_year('opened_date') }} as integer) as fiscal_year,
        cast({{ fiscal_quarter('opened_date') }} as integer) as fiscal_quarter,
        -- outcome flags (assisted queues: calls and chats)
        contact_type in ('call', 'chat') and coalesce(outcome, '') <> 'IVR_SELF_SERVICE' as is_queued,
        contact_type in ('call', 'chat') and coalesce(outcome, '') not in ('ABANDONED', 'IVR_SELF_SERVICE')
            as is_answered,
        coalesce(outcome, '') = 'ABANDONED' as is_abandoned,
        coalesce(outcome, '') = 'TRANSFERRED' as is_transferred,
        coalesce(outcome, '') = 'IVR_SELF_SERVICE' as is_self_service,
        -- first-contact resolution: a customer we can recognise, not back for the same reason
        customer_key is not null and coalesce(outcome, '') <> 'ABANDONED' as is_resolvable,
        (
            next_same_reason_at is not null
            and {{ dbt.datediff('opened_at', 'next_same_reason_at', 'second') }}
            <= {{ var('repeat_contact_days') }} * 86400
        ) as is_followed_by_repeat,
        -- measures
        queue_wait_seconds,
        handle_seconds,
        case
            when closed_at is not null
                then {{ divide(dbt.datediff('opened_at', 'closed_at', 'second'), '3600.0') }}
        end as hours_to_close,
        -- timestamps (UTC)
        opened_at,
        closed_at,
        -- lineage
        delivery_period,
        source_file,
        source_row_number,
        current_timestamp as _built_at
    from sequenced
)

select * from final
-- the month after was read for its repeats, not rebuilt (its own repeats lie beyond the window)
where {{ partition_window_filter('agency_code', 'delivery_period', lookback_months=1) }}
