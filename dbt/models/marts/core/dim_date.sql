-- Calendar with the federal fiscal year (FY N = 1 Oct N-1 .. 30 Sep N) and quarter (Q1 = Oct-Dec).
with

days as (
    {{ date_series(var('calendar_start'), var('calendar_end')) }}
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
