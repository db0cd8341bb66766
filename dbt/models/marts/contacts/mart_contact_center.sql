-- Contact-center and 311 performance per agency x service x channel x contact type x month.
-- Formulas: see _contacts__models.yml.
with

contacts as (
    select * from {{ ref('fct_contact') }}
),

reasons as (
    select * from {{ ref('dim_contact_reason') }}
),

counted as (
    select
        contacts.agency_code,
        contacts.service_code,
        contacts.channel_code,
        contacts.contact_type,
        contacts.opened_month,
        count(*) as contacts,
        sum(case when contacts.is_queued then 1 else 0 end) as queued,
        sum(case when contacts.is_answered then 1 else 0 end) as answered,
        sum(case when contacts.is_abandoned then 1 else 0 end) as abandoned,
        sum(
            case
                when contacts.is_answered and contacts.queue_wait_seconds <= {{ var('service_level_seconds') }} then 1
                else 0
            end
        ) as answered_within_target,
        sum(case when contacts.is_answered then contacts.queue_wait_seconds else 0 end) as answered_wait_seconds,
        sum(case when contacts.is_answered then contacts.handle_seconds else 0 end) as answered_handle_seconds,
        sum(case when contacts.is_transferred then 1 else 0 end) as transferred,
        sum(case when contacts.is_self_service then 1 else 0 end) as self_served,
        sum(case when contacts.is_resolvable then 1 else 0 end) as resolvable,
        sum(case when contacts.is_resolvable and not contacts.is_followed_by_repeat then 1 else 0 end)
            as resolved_first_contact,
        sum(case when contacts.hours_to_close is not null then 1 else 0 end) as closed,
        sum(contacts.hours_to_close) as hours_to_close_sum,
        sum(
            case when reasons.resolution_sla_hours is not null and contacts.hours_to_close is not null then 1 else 0 end
        ) as closed_with_sla,
        sum(case when contacts.hours_to_close <= reasons.resolution_sla_hours then 1 else 0 end) as closed_within_sla
    from contacts
    left join reasons on contacts.reason_code = reasons.reason_code
    group by
        contacts.agency_code, contacts.service_code, contacts.channel_code, contacts.contact_type, contacts.opened_month
),

final as (
    select
        -- grain
        agency_code,
        service_code,
        channel_code,
        contact_type,
        cast(opened_month as date) as month_start,
        -- volumes
        cast(contacts as bigint) as contacts,
        cast(queued as bigint) as queued,
        cast(answered as bigint) as answered,
        cast(abandoned as bigint) as abandoned,
        -- rates
        cast(answered_wait_seconds as double) / nullif(answered, 0) as average_speed_of_answer_seconds,
        {{ divide('100.0 * abandoned', 'nullif(queued, 0)') }} as abandonment_rate_pct,
        {{ divide('100.0 * answered_within_target', 'nullif(queued, 0)') }} as service_level_pct,
        cast(answered_handle_seconds as double) / nullif(answered, 0) as average_handle_time_seconds,
        {{ divide('100.0 * transferred', 'nullif(answered, 0)') }} as transfer_rate_pct,
        {{ divide('100.0 * self_served', 'nullif(contacts, 0)') }} as automation_containment_pct,
        {{ divide('100.0 * resolved_first_contact', 'nullif(resolvable, 0)') }} as first_contact_resolution_pct,
        -- 311 service requests
        cast(closed as bigint) as closed_requests,
        {{ divide('hours_to_close_sum', 'nullif(closed, 0)') }} as average_hours_to_close,
        {{ divide('100.0 * closed_within_sla', 'nullif(closed_with_sla, 0)') }} as closed_within_sla_pct
    from counted
)

select * from final
