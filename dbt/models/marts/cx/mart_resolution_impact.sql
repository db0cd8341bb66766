-- Satisfaction of customers who had no problem, had it resolved, or not, per agency and quarter.
with

satisfaction as (
    select * from {{ ref('fct_survey_response') }}
    where driver_code = 'satisfaction'
),

status as (
    select * from {{ ref('int_survey_responses__problem_status') }}
),

grouped as (
    select
        satisfaction.agency_code,
        satisfaction.fiscal_year,
        satisfaction.fiscal_quarter,
        status.problem_status,
        count(*) as respondents,
        count(satisfaction.score_1_5) as scored_respondents,
        sum(cast(satisfaction.score_1_5 as decimal(18, 9))) as score_sum,
        sum(case when satisfaction.is_agree then 1 else 0 end) as satisfied
    from satisfaction
    inner join status on satisfaction.response_key = status.response_key
    group by satisfaction.agency_code, satisfaction.fiscal_year, satisfaction.fiscal_quarter, status.problem_status
)

select
    agency_code,
    cast(fiscal_year as integer) as fiscal_year,
    cast(fiscal_quarter as integer) as fiscal_quarter,
    problem_status,
    cast(respondents as bigint) as respondents,
    case
        when respondents >= {{ var('min_cell_size') }} then cast(score_sum as double) / nullif(scored_respondents, 0)
    end as mean_satisfaction,
    case
        when respondents >= {{ var('min_cell_size') }} then {{ divide('100.0 * satisfied', 'respondents') }}
    end as pct_satisfied,
    respondents < {{ var('min_cell_size') }} as suppressed
from grouped
