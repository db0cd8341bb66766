-- One row per answered question, with the answer normalised for lookup (trimmed, lower case).
with

source as (
    select * from {{ source('raw', 'survey_answers') }} as delivered
    where {{ not_held('delivered') }}
),

renamed as (
    select
        agency_code || ':' || response_id as response_key,
        agency_code,
        question_code,
        {{ label_key('answer_value') }} as answer_value,
        _source_file as source_file,
        _row_number as source_row_number
    from source
)

select * from renamed
