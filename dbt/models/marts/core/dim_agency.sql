-- Agencies with validity dates (type-2: a renamed agency keeps its history).
with

agencies as (
    select * from {{ ref('agencies') }}
),

final as (
    select
        agency_code || ':' || cast(valid_from as {{ dbt.type_string() }}) as agency_version_key,
        agency_code,
        agency_name,
        department,
        government_level,
        reporting_timezone,
        valid_from,
        valid_to,
        valid_to = cast('9999-12-31' as date) as is_current
    from agencies
)

select * from final
