-- Calendar with the federal fiscal year (FY N = 1 Oct N-1 .. 30 Sep N) and quarter (Q1 = Oct-Dec).
-- Whole fiscal years spanning every date a fact holds (a fact dated outside the calendar would
-- drop out of every mart that joins it), and at least var('calendar_start') .. var('calendar_end')
-- (the years BI users plan in, and the calendar of an empty warehouse).
with

fact_dates as (
    select
        min(submitted_date) as first_date,
        max(submitted_date) as last_date
    from {{ ref('fct_survey_response') }}
    union all
    select
        min(period_start) as first_date,
        max(period_end) as last_date
    from {{ ref('fct_survey_counts') }}
    union all
    select
        min(opened_date) as first_date,
        max(opened_date) as last_date
    from {{ ref('fct_contact') }}
    union all
    select
        min(report_date) as first_date,
        max(report_date) as last_date
    from {{ ref('fct_web_daily') }}
),

configured as (
    select
        cast('{{ var("calendar_start") }}' as date) as calendar_start,
        cast('{{ var("calendar_end") }}' as date) as calendar_end
),

covered as (
    select
        least(coalesce(min(fact_dates.first_date), configured.calendar_start), configured.calendar_start)
            as first_date,
        greatest(coalesce(max(fact_dates.last_date), configured.calendar_end), configured.calendar_end)
            as last_date
    from fact_dates
    cross join configured
    group by configured.calendar_start, configured.calendar_end
),

-- whole fiscal years: from the 1 October on or before the first date to the 30 September on or
-- after the last
bounds as (
    select
        {{ fiscal_year_start('first_date') }} as first_day,
        {{ dbt.dateadd('day', -1, dbt.dateadd('month', 12, fiscal_year_start('last_date'))) }} as last_day
    from covered
),

days as (
    {{ date_series('bounds', 'first_day', 'last_day') }}
)

select
    date_day,
    cast(extract(year from date_day) as integer) as calendar_year,
    cast(extract(month from date_day) as integer) as calendar_month,
    {{ dbt.date_trunc('month', 'date_day') }} as month_start,
    cast({{ fiscal_year('date_day') }} as integer) as fiscal_year,
    cast({{ fiscal_quarter('date_day') }} as integer) as fiscal_quarter,
    'FY'
    || cast({{ fiscal_year('date_day') }} as {{ dbt.type_string() }})
    || ' Q'
    || cast({{ fiscal_quarter('date_day') }} as {{ dbt.type_string() }})
        as fiscal_quarter_label
from days
