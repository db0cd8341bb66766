-- Pre-aggregated A-11 results: respondents per scale point per service x channel x period x question.
with

points as (
    select * from {{ source('raw', 'survey_count_points') }}
),

renamed as (
    select
        -- grain
        agency_code,
        period_start,
        service_code,
        lower(trim(channel_code)) as channel_label,
        question_code,
        {{ dbt.safe_cast('scale_point', dbt.type_int()) }} as scale_point,
        -- measure
        {{ dbt.safe_cast('respondents', dbt.type_bigint()) }} as respondents,
        -- lineage
        feed_name,
        _source_file as source_file,
        _row_number as source_row_number
    from points
)

select * from renamed
