-- A-11 quarterly results per agency x service x channel x fiscal quarter x driver,
-- with small cells suppressed (see the YAML for each formula).
with

facts as (
    select * from {{ ref('fct_survey_response') }}
),

aggregated as (
    select
        agency_code,
        service_code,
        channel_code,
        fiscal_year,
        fiscal_quarter,
        driver_code,
        count(*) as responses,
        count(score_1_5) as scored_responses,
        -- exact decimal sum: a float sum depends on the order DuckDB's threads add in, so a
        -- rebuild could differ in the last bit; 9 decimals keep the mean exact to 1e-9
        sum(cast(score_1_5 as decimal(18, 9))) as score_sum,
        sum(case when is_agree then 1 else 0 end) as agree_responses
    from facts
    group by agency_code, service_code, channel_code, fiscal_year, fiscal_quarter, driver_code
),

final as (
    select
        -- grain
        agency_code,
        service_code,
        channel_code,
        cast(fiscal_year as integer) as fiscal_year,
        cast(fiscal_quarter as integer) as fiscal_quarter,
        driver_code,
        -- measures
        cast(responses as bigint) as responses,
        cast(scored_responses as bigint) as scored_responses,
        case
            when responses >= {{ var('min_cell_size') }} and scored_responses > 0
                then cast(score_sum / scored_responses as double)
        end as mean_score,
        case
            when responses >= {{ var('min_cell_size') }}
                then cast(100.0 * agree_responses / responses as double)
        end as pct_agree,
        responses < {{ var('min_cell_size') }} as suppressed
    from aggregated
)

select * from final
