{{ config(meta={'dagster': {'ref': {'name': 'mart_cx_quarterly'}}}) }}
-- Detects responses lost or double counted between fct_survey_response and mart_cx_quarterly:
-- every fact row belongs to exactly one mart cell, suppressed or not, so the totals per agency
-- and driver must be equal (threshold: zero, a count cannot be off by "a little").
with

fact as (
    select agency_code, driver_code, count(*) as n
    from {{ ref('fct_survey_response') }}
    group by agency_code, driver_code
),

mart as (
    select agency_code, driver_code, sum(responses) as n
    from {{ ref('mart_cx_quarterly') }}
    group by agency_code, driver_code
)

select fact.agency_code, fact.driver_code, fact.n as fact_n, mart.n as mart_n
from fact
full outer join mart on fact.agency_code = mart.agency_code and fact.driver_code = mart.driver_code
where coalesce(fact.n, -1) <> coalesce(mart.n, -1)
