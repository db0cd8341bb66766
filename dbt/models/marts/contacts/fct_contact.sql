-- One row per contact (call, chat, 311 service request), conformed: canonical channel, shared
-- reason, canonical contact type / outcome / status with the flags their vocabularies give
-- (seeds/contact_types.csv, outcomes.csv, request_statuses.csv), and whether the same customer
-- came back for the same reason. Days, months and fiscal quarters are the agency's own (its
-- reporting time zone, dim_agency); opened_at and closed_at stay UTC.
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
        {{ label_key('source_reason') }} as source_reason,
        reason_code
    from {{ ref('contact_reasons') }}
),

vocabulary as (
    select * from {{ ref('int_contact_values__resolved') }}
),

contact_types as (
    select * from {{ ref('dim_contact_type') }}
),

outcomes as (
    select * from {{ ref('dim_outcome') }}
),

statuses as (
    select * from {{ ref('dim_request_status') }}
),

agencies as (
    select * from {{ ref('dim_agency') }}
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
        contact_type_value.canonical_value as contact_type,
        contacts.contact_type as source_contact_type,
        outcome_value.canonical_value as outcome,
        contacts.outcome as source_outcome,
        status_value.canonical_value as status,
        contacts.status as source_status,
        -- what the vocabularies say (null: no value delivered, or a value with no synonym)
        contact_types.is_queued as type_is_queued,
        outcomes.is_queued as outcome_is_queued,
        outcomes.is_answered as outcome_is_answered,
        outcomes.is_abandoned as outcome_is_abandoned,
        outcomes.is_transferred as outcome_is_transferred,
        outcomes.is_self_service as outcome_is_self_service,
        outcomes.is_resolvable as outcome_is_resolvable,
        statuses.is_closed as status_is_closed,
        -- measures
        contacts.queue_wait_seconds,
        contacts.handle_seconds,
        -- timestamps (UTC)
        contacts.opened_at,
        contacts.closed_at,
        -- the agency's local day (the agency version of the UTC day: type-2)
        agencies.reporting_timezone,
        cast({{ utc_to_local('contacts.opened_at', 'agencies.reporting_timezone') }} as date) as opened_date,
        -- lineage
        contacts.feed_name,
        contacts.delivery_period,
        contacts.source_file,
        contacts.source_row_number
    from contacts
    left join channels
        on contacts.agency_code = channels.agency_code and contacts.channel_label = channels.channel_label
    left join reasons
        on
            contacts.agency_code = reasons.agency_code
            and {{ label_key('contacts.reason_code') }} = reasons.source_reason
    left join vocabulary as contact_type_value
        on
            contacts.agency_code = contact_type_value.agency_code
            and contact_type_value.vocabulary = 'contact_type'
            and contacts.contact_type_label = contact_type_value.source_label
    left join vocabulary as outcome_value
        on
            contacts.agency_code = outcome_value.agency_code
            and outcome_value.vocabulary = 'outcome'
            and contacts.outcome_label = outcome_value.source_label
    left join vocabulary as status_value
        on
            contacts.agency_code = status_value.agency_code
            and status_value.vocabulary = 'status'
            and contacts.status_label = status_value.source_label
    left join agencies
        on
            contacts.agency_code = agencies.agency_code
            and cast(contacts.opened_at as date) between agencies.valid_from and agencies.valid_to
    left join contact_types on contact_type_value.canonical_value = contact_types.contact_type
    left join outcomes on outcome_value.canonical_value = outcomes.outcome
    left join statuses on status_value.canonical_value = statuses.status
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
        source_contact_type,
        outcome,
        source_outcome,
        status,
        source_status,
        -- periods: local to the agency's reporting time zone
        reporting_timezone,
        opened_date,
        {{ dbt.date_trunc('month', 'opened_date') }} as opened_month,
        cast({{ fiscal_year('opened_date') }} as integer) as fiscal_year,
        cast({{ fiscal_quarter('opened_date') }} as integer) as fiscal_quarter,
        -- unmapped: a value was delivered, but no synonym maps it (counted in mart_feed_health)
        source_contact_type is not null and contact_type is null as is_contact_type_unmapped,
        source_outcome is not null and outcome is null as is_outcome_unmapped,
        source_status is not null and status is null as is_status_unmapped,
        -- outcome flags from the vocabularies. Queues belong to the contact types that have one
        -- (calls, chats). A contact without a known outcome counts as queued and answered there,
        -- never as abandoned, transferred or self-served (what a contact center reports by default).
        coalesce(type_is_queued, false) and coalesce(outcome_is_queued, true) as is_queued,
        coalesce(type_is_queued, false) and coalesce(outcome_is_answered, true) as is_answered,
        coalesce(type_is_queued, false) and coalesce(outcome_is_abandoned, false) as is_abandoned,
        coalesce(outcome_is_transferred, false) as is_transferred,
        coalesce(outcome_is_self_service, false) as is_self_service,
        -- first-contact resolution: a customer we can recognise, whose outcome counts, not back for the same reason
        customer_key is not null and coalesce(outcome_is_resolvable, true) as is_resolvable,
        status_is_closed as is_closed,
        -- an unknown customer (null key) is nobody's repeat: nulls share one window partition
        (
            customer_key is not null
            and next_same_reason_at is not null
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
        feed_name,
        delivery_period,
        source_file,
        source_row_number,
        current_timestamp as _built_at
    from sequenced
)

select * from final
-- the month after was read for its repeats, not rebuilt (its own repeats lie beyond the window)
where {{ partition_window_filter('agency_code', 'delivery_period', lookback_months=1) }}
