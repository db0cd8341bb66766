-- Pre-aggregated A-11 results: respondents per scale point per service x channel x period x question.
with

rows_delivered as (
    select * from {{ source('raw', 'survey_counts') }} as delivered
    where {{ not_held('delivered') }}
),

points as (
    select * from {{ source('raw', 'survey_count_points') }} as delivered
    where {{ not_held('delivered') }}
),

joined as (
    select
        -- grain
        points.agency_code,
        points.period_start,
        rows_delivered.period_end,
        points.service_code,
        {{ label_key('points.channel_code') }} as channel_label,
        points.question_code,
        {{ dbt.safe_cast('points.scale_point', dbt.type_int()) }} as scale_point,
        -- measure
        {{ dbt.safe_cast('points.respondents', dbt.type_bigint()) }} as respondents,
        -- lineage
        points.feed_name,
        points._source_file as source_file,
        points._row_number as source_row_number
    from points
    -- a record is its file, its feed and its ordinal: two feeds may read the same file
    inner join rows_delivered
        on
            points._file_sha256 = rows_delivered._file_sha256
            and points.agency_code = rows_delivered.agency_code
            and points.feed_name = rows_delivered.feed_name
            and points._row_number = rows_delivered._row_number
)

select * from joined
