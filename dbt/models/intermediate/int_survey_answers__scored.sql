-- Answers conformed to A-11 drivers (and ACSI items) on one scale.
--   likert / likert_label: score_1_5 = 1 + 4 * (x - scale_min) / (scale_max - scale_min); agree = score_1_5 >= 4
--   thumbs (1/0): no 1-5 score; agree = thumbs up
--   flag_positive / flag_negative (Touchpoints "what went well / didn't"): a ticked flag ("1")
--     is a response for its driver, agree for positive, disagree for negative; "0" and the
--     literal "null" (option not offered) are not responses.
with

answers as (
    select * from {{ ref('stg_surveys__answers') }}
),

questions as (
    select * from {{ ref('survey_questions') }}
),

labels as (
    select * from {{ ref('answer_labels') }}
),

valued as (
    select
        answers.response_key,
        answers.agency_code,
        answers.question_code,
        questions.driver_code,
        questions.acsi_construct,
        questions.question_role,
        questions.item_type,
        questions.scale_min,
        questions.scale_max,
        answers.answer_value,
        case
            when questions.item_type = 'likert_label' then cast(labels.answer_value as double)
            else {{ dbt.safe_cast('answers.answer_value', dbt.type_float()) }}
        end as numeric_value
    from answers
    inner join questions
        on answers.agency_code = questions.agency_code and answers.question_code = questions.question_code
    left join labels
        on questions.answer_set = labels.answer_set and answers.answer_value = labels.answer_label
    where questions.item_type <> 'problem_status'  -- not a score: see int_survey_responses__problem_status
),

responses_only as (
    select * from valued
    where item_type not in ('flag_positive', 'flag_negative') or answer_value = '1'
),

scored as (
    select
        response_key,
        agency_code,
        question_code,
        driver_code,
        acsi_construct,
        question_role,
        item_type,
        numeric_value as raw_value,
        case
            when item_type in ('likert', 'likert_label')
                then 1 + 4.0 * (numeric_value - scale_min) / (scale_max - scale_min)
        end as score_1_5,
        case
            when item_type in ('likert', 'likert_label')
                then 1 + 4.0 * (numeric_value - scale_min) / (scale_max - scale_min) >= 4
            when item_type = 'thumbs' then numeric_value = 1
            when item_type = 'flag_positive' then true
            when item_type = 'flag_negative' then false
        end as is_agree
    from responses_only
)

select * from scored
