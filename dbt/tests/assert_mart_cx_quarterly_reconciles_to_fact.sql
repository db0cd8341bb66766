{{ config(meta={'dagster': {'ref': {'name': 'mart_cx_quarterly'}}}) }}
-- Detects A-11 driver responses lost or double counted on the way from the facts to mart_cx_quarterly:
--   respondent answers (fct_survey_response) -> conformed counts (fct_survey_counts) -> mart.
-- Every answer belongs to exactly one count row and every count row to one mart cell,
-- suppressed or not, so the totals per agency and driver must be equal (threshold: zero,
-- a count cannot be off by "a little"). The three sides are fully outer joined: an agency x
-- driver missing from any one of them is a row here, whichever side lost it.
with

answers as (
    select
        agency_code,
        driver_code,
        count(*) as n
    from {{ ref('fct_survey_response') }}
    where question_role = 'driver'
    group by agency_code, driver_code
),

counts as (
    select
        agency_code,
        driver_code,
        sum(respondents) as n,
        sum(case when reported_as = 'respondent' then respondents else 0 end) as n_respondent_level
    from {{ ref('fct_survey_counts') }}
    where question_role = 'driver'
    group by agency_code, driver_code
),

mart as (
    select
        agency_code,
        driver_code,
        sum(responses) as n
    from {{ ref('mart_cx_quarterly') }}
    group by agency_code, driver_code
)

select
    coalesce(counts.agency_code, mart.agency_code, answers.agency_code) as agency_code,
    coalesce(counts.driver_code, mart.driver_code, answers.driver_code) as driver_code,
    answers.n as answers_n,
    counts.n as counts_n,
    mart.n as mart_n
from counts
full outer join mart on counts.agency_code = mart.agency_code and counts.driver_code = mart.driver_code
full outer join answers
    on
        coalesce(counts.agency_code, mart.agency_code) = answers.agency_code
        and coalesce(counts.driver_code, mart.driver_code) = answers.driver_code
where coalesce(counts.n, -1) <> coalesce(mart.n, -1)
    or coalesce(answers.n, 0) <> coalesce(counts.n_respondent_level, 0)
