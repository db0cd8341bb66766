-- Cross-agency benchmark per fiscal quarter: each agency's A-11 % agree over all drivers,
-- its rank, its government-wide percentile and its change since the previous quarter.
with

counts as (
    select * from {{ ref('fct_survey_counts') }}
    where question_role = 'driver'
),

per_agency as (
    select
        agency_code,
        fiscal_year,
        fiscal_quarter,
        sum(respondents) as responses,
        sum(case when is_agree then respondents else 0 end) as agree_responses,
        sum(case when driver_code = 'trust' then respondents else 0 end) as trust_responses,
        sum(case when driver_code = 'trust' and is_agree then respondents else 0 end) as trust_agree
    from counts
    group by agency_code, fiscal_year, fiscal_quarter
),

scored as (
    select
        *,
        responses < {{ var('min_cell_size') }} as suppressed,
        case
            when responses >= {{ var('min_cell_size') }} then {{ divide('100.0 * agree_responses', 'responses') }}
        end as cx_score,
        case
            when trust_responses >= {{ var('min_cell_size') }}
                then {{ divide('100.0 * trust_agree', 'trust_responses') }}
        end as trust_pct_agree,
        fiscal_year * 4 + fiscal_quarter as quarter_index
    from per_agency
),

ranked as (
    select
        *,
        -- only published (unsuppressed) agencies are ranked against each other
        case when not suppressed then rank() over (partition by quarter_index, suppressed order by cx_score desc) end
            as cx_rank,
        case
            when
                not suppressed
                then 100.0 * percent_rank() over (partition by quarter_index, suppressed order by cx_score)
        end as government_percentile,
        sum(case when suppressed then 0 else 1 end) over (partition by quarter_index) as agencies_ranked,
        lag(cx_score) over (partition by agency_code order by quarter_index) as previous_cx_score,
        lag(quarter_index) over (partition by agency_code order by quarter_index) as previous_quarter_index
    from scored
),

quarters as (
    select
        fiscal_year,
        fiscal_quarter,
        min(date_day) as quarter_start
    from {{ ref('dim_date') }}
    group by fiscal_year, fiscal_quarter
)

select
    ranked.agency_code,
    agencies.agency_name,
    cast(ranked.fiscal_year as integer) as fiscal_year,
    cast(ranked.fiscal_quarter as integer) as fiscal_quarter,
    cast(ranked.responses as bigint) as responses,
    cast(ranked.cx_score as double) as cx_score,
    cast(ranked.trust_pct_agree as double) as trust_pct_agree,
    cast(ranked.cx_rank as integer) as cx_rank,
    cast(ranked.agencies_ranked as integer) as agencies_ranked,
    cast(ranked.government_percentile as double) as government_percentile,
    case
        when ranked.previous_quarter_index = ranked.quarter_index - 1
            then cast(ranked.cx_score - ranked.previous_cx_score as double)
    end as change_vs_previous_quarter,
    ranked.suppressed
from ranked
inner join quarters on ranked.fiscal_year = quarters.fiscal_year and ranked.fiscal_quarter = quarters.fiscal_quarter
-- the agency as it was named in that quarter (dim_agency is type-2)
left join {{ ref('dim_agency') }} as agencies
    on ranked.agency_code = agencies.agency_code
        and quarters.quarter_start between agencies.valid_from and agencies.valid_to
