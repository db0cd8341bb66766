-- Why customers contact each agency: reasons ranked per agency and month, with repeat rates.
with

contacts as (
    select * from {{ ref('fct_contact') }}
),

per_reason as (
    select
        agency_code,
        opened_month,
        reason_code,
        count(*) as contacts,
        sum(case when is_resolvable then 1 else 0 end) as resolvable,
        sum(case when is_resolvable and is_followed_by_repeat then 1 else 0 end) as repeated
    from contacts
    group by agency_code, opened_month, reason_code
),

final as (
    select
        agency_code,
        cast(opened_month as date) as month_start,
        reason_code,
        cast(contacts as bigint) as contacts,
        cast(rank() over (partition by agency_code, opened_month order by contacts desc) as integer) as reason_rank,
        {{ divide('100.0 * contacts', 'sum(contacts) over (partition by agency_code, opened_month)') }}
            as share_of_contacts_pct,
        {{ divide('100.0 * repeated', 'nullif(resolvable, 0)') }} as repeat_contact_rate_pct
    from per_reason
)

select * from final
