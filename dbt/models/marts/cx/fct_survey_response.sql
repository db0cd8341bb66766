-- One row per respondent x scored question (A-11 driver or ACSI item), with its day and fiscal
-- period in the agency's reporting time zone (dim_agency); submitted_at stays UTC.
-- Incremental: a run rebuilds only its agency x delivery-period partitions (delete + insert).
{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ full_window_reset() }}",
    **incremental_partition_config(['agency_code', 'delivery_period'])
) }}

with

delivered as (
    select * from {{ ref('stg_surveys__responses') }}
    where {{ partition_window_filter('agency_code', 'delivery_period') }}
),

scored as (
    select * from {{ ref('int_survey_answers__scored') }}
),

channels as (
    select * from {{ ref('int_channels__resolved') }}
),

agencies as (
    select * from {{ ref('dim_agency') }}
),

responses as (
    select
        delivered.*,
        agencies.reporting_timezone,
        cast({{ utc_to_local('delivered.submitted_at', 'agencies.reporting_timezone') }} as date) as submitted_date
    from delivered
    -- the agency version of the UTC day (type-2)
    left join agencies
        on
            delivered.agency_code = agencies.agency_code
            and cast(delivered.submitted_at as date) between agencies.valid_from and agencies.valid_to
),

joined as (
    select
        -- ids
        scored.response_key,
        scored.question_code,
        -- dimensions
        responses.agency_code,
        coalesce(responses.service_code, 'UNSPECIFIED') as service_code,
        coalesce(channels.channel_code, 'unknown') as channel_code,
        scored.driver_code,
        scored.acsi_construct,
        scored.question_role,
        scored.item_type,
        -- periods: local to the agency's reporting time zone
        responses.reporting_timezone,
        responses.submitted_date,
        {{ fiscal_year('responses.submitted_date') }} as fiscal_year,
        {{ fiscal_quarter('responses.submitted_date') }} as fiscal_quarter,
        -- measures
        scored.raw_value,
        scored.score_1_5,
        scored.is_agree,
        -- timestamps (UTC)
        responses.submitted_at,
        -- lineage
        responses.delivery_period,
        responses.source_file,
        responses.source_row_number,
        current_timestamp as _built_at
    from scored
    inner join responses on scored.response_key = responses.response_key
    left join channels
        on responses.agency_code = channels.agency_code and responses.channel_label = channels.channel_label
)

select * from joined
