-- ACSI-style 0-100 satisfaction index and the expectation gap, per agency x service x quarter.
-- Every item is put on 0-100 as 100 * (x - min) / (max - min) = 100 * (score_1_5 - 1) / 4.
with

counts as (
    select * from {{ ref('fct_survey_counts') }}
    where score_1_5 is not null
),

drivers as (
    select * from {{ ref('dim_driver') }}
),

per_construct as (
    select
        counts.agency_code,
        counts.service_code,
        counts.fiscal_year,
        counts.fiscal_quarter,
        coalesce(counts.acsi_construct, drivers.acsi_construct) as construct,
        sum(counts.respondents) as respondents,
        -- an exact sum, narrowed to 28 digits: Spark keeps only 6 decimals of 100.0 x a 38-digit decimal
        {{ divide(
            '100.0 * cast(sum(cast((counts.score_1_5 - 1) / 4 as decimal(18, 9))'
            ~ ' * cast(counts.respondents as decimal(18, 0))) as decimal(28, 9))',
            'sum(counts.respondents)'
        ) }} as mean_0_100
    from counts
    left join drivers on counts.driver_code = drivers.driver_code
    group by 1, 2, 3, 4, 5
),

pivoted as (
    select
        agency_code,
        service_code,
        fiscal_year,
        fiscal_quarter,
        max(case when construct = 'satisfaction' then respondents end) as acsi_respondents,
        max(case when construct = 'satisfaction' then mean_0_100 end) as satisfaction_0_100,
        max(case when construct = 'confirmation' then mean_0_100 end) as confirmation_0_100,
        max(case when construct = 'ideal' then mean_0_100 end) as ideal_0_100,
        max(case when construct = 'expectations' then mean_0_100 end) as expectations_0_100,
        max(case when construct = 'perceived_quality' then mean_0_100 end) as perceived_quality_0_100
    from per_construct
    group by 1, 2, 3, 4
),

final as (
    select
        agency_code,
        service_code,
        cast(fiscal_year as integer) as fiscal_year,
        cast(fiscal_quarter as integer) as fiscal_quarter,
        cast(acsi_respondents as bigint) as respondents,
        case
            when acsi_respondents >= {{ var('min_cell_size') }}
                then cast((satisfaction_0_100 + confirmation_0_100 + ideal_0_100) / 3 as double)
        end as satisfaction_index,
        case when acsi_respondents >= {{ var('min_cell_size') }} then cast(perceived_quality_0_100 as double) end
            as perceived_performance,
        case when acsi_respondents >= {{ var('min_cell_size') }} then cast(expectations_0_100 as double) end
            as expectations,
        case
            when acsi_respondents >= {{ var('min_cell_size') }}
                then cast(perceived_quality_0_100 - expectations_0_100 as double)
        end as expectation_gap,
        acsi_respondents < {{ var('min_cell_size') }} as suppressed
    from pivoted
    where acsi_respondents is not null
)

select * from final
