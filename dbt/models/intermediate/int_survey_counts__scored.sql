-- Pre-aggregated counts conformed like respondent answers: each scale point rescaled to 1-5,
-- agree = 4-5 on 1-5 (see int_survey_answers__scored for the same rule on respondent data).
with

counts as (
    select * from {{ ref('stg_surveys__counts') }}
),

questions as (
    select * from {{ ref('survey_questions') }}
),

scored as (
    select
        counts.agency_code,
        counts.service_code,
        counts.channel_label,
        counts.period_start,
        counts.period_end,
        counts.question_code,
        questions.driver_code,
        questions.acsi_construct,
        questions.question_role,
        questions.item_type,
        1 + {{ divide(
            '4.0 * (counts.scale_point - questions.scale_min)', '(questions.scale_max - questions.scale_min)'
        ) }} as score_1_5,
        counts.respondents
    from counts
    inner join questions
        on counts.agency_code = questions.agency_code and counts.question_code = questions.question_code
    where counts.respondents > 0
)

select
    *,
    score_1_5 >= 4 as is_agree
from scored
