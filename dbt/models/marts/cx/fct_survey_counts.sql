-- The grain both kinds of survey feed reduce to: agency x service x channel x period x question
-- x answer value -> respondents. Respondent-level feeds count their answers per day;
-- pre-aggregated A-11 feeds arrive per quarter. A mart never cares which way an agency reported.
with

respondent_level as (
    select
        agency_code,
        service_code,
        channel_code,
        submitted_date as period_start,
        submitted_date as period_end,
        question_code,
        driver_code,
        acsi_construct,
        question_role,
        item_type,
        score_1_5,
        is_agree,
        count(*) as respondents,
        'respondent' as reported_as
    from {{ ref('fct_survey_response') }}
    group by
        agency_code, service_code, channel_code, submitted_date, question_code, driver_code, acsi_construct,
        question_role, item_type, score_1_5, is_agree
),

aggregated as (
    select
        counts.agency_code,
        counts.service_code,
        coalesce(channels.channel_code, 'unknown') as channel_code,
        counts.period_start,
        counts.period_end,
        counts.question_code,
        counts.driver_code,
        counts.acsi_construct,
        counts.question_role,
        counts.item_type,
        counts.score_1_5,
        counts.is_agree,
        counts.respondents,
        'aggregate' as reported_as
    from {{ ref('int_survey_counts__scored') }} as counts
    left join {{ ref('int_channels__resolved') }} as channels
        on counts.agency_code = channels.agency_code and counts.channel_label = channels.channel_label
),

unioned as (
    select * from respondent_level
    union all
    select * from aggregated
)

select
    -- grain
    agency_code,
    service_code,
    channel_code,
    period_start,
    period_end,
    {{ fiscal_year('period_start') }} as fiscal_year,
    {{ fiscal_quarter('period_start') }} as fiscal_quarter,
    question_code,
    driver_code,
    acsi_construct,
    question_role,
    item_type,
    score_1_5,
    is_agree,
    -- measure
    cast(respondents as bigint) as respondents,
    -- how the agency reported it
    reported_as
from unioned
