-- A-11 quarterly results per agency x service x channel x fiscal quarter x driver, from the
-- conformed counts (respondent-level and pre-aggregated feeds alike), small cells suppressed.
-- Formulas: see _cx__models.yml.
with

counts as (
    select * from {{ ref('fct_survey_counts') }}
    where question_role = 'driver'
),

aggregated as (
    select
        agency_code,
        service_code,
        channel_code,
        fiscal_year,
        fiscal_quarter,
        driver_code,
        sum(respondents) as responses,
        sum(case when score_1_5 is not null then respondents else 0 end) as scored_responses,
        -- exact decimal sums: a float sum depends on the order DuckDB's threads add in, so a
        -- rebuild could differ in the last bit; 9 decimals keep the mean exact to 1e-9. The count
        -- is a decimal(18, 0) too: times a bigint (20 digits) Spark would round the product to 8.
        sum(cast(score_1_5 as decimal(18, 9)) * cast(respondents as decimal(18, 0))) as score_sum,
        sum(cast(score_1_5 * score_1_5 as decimal(18, 9)) * cast(respondents as decimal(18, 0))) as score_square_sum,
        sum(case when is_agree then respondents else 0 end) as agree_responses
    from counts
    group by agency_code, service_code, channel_code, fiscal_year, fiscal_quarter, driver_code
),

measured as (
    select
        *,
        cast(score_sum as double) / nullif(scored_responses, 0) as mean_raw,
        cast(agree_responses as double) / responses as agree_share,
        -- sample variance of the 1-5 scores: (sum x^2 - (sum x)^2 / n) / (n - 1)
        (
            cast(score_square_sum as double)
            - cast(score_sum as double) * cast(score_sum as double) / nullif(scored_responses, 0)
        )
        / nullif(scored_responses - 1, 0) as score_variance
    from aggregated
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
        case when responses >= {{ var('min_cell_size') }} then mean_raw end as mean_score,
        case
            when responses >= {{ var('min_cell_size') }} and scored_responses > 1
                then 1.96 * sqrt(greatest(score_variance, 0) / scored_responses)
        end as mean_score_moe_95,
        case when responses >= {{ var('min_cell_size') }} then 100.0 * agree_share end as pct_agree,
        case
            when responses >= {{ var('min_cell_size') }}
                then 100.0 * 1.96 * sqrt(agree_share * (1 - agree_share) / responses)
        end as pct_agree_moe_95,
        responses < {{ var('min_cell_size') }} as suppressed
    from measured
)

select * from final
