-- The respondent's own account of their problem: no problem / resolved / not resolved.
with

answers as (
    select * from {{ ref('stg_surveys__answers') }}
),

questions as (
    select * from {{ ref('survey_questions') }}
    where item_type = 'problem_status'
)

select
    answers.response_key,
    replace(answers.answer_value, ' ', '_') as problem_status
from answers
inner join questions
    on answers.agency_code = questions.agency_code and answers.question_code = questions.question_code
