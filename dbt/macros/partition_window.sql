{#- Incremental facts rebuild only the delivery partitions (agency x period) of the Dagster run:
    var('agencies') and var('periods') ('YYYY-MM') come from the run's partition window. With
    lookback_months, earlier periods of the same agencies are rebuilt too (a flag that looks
    across periods, like a repeat contact, must see both sides). Without the vars, or on the
    first build, every row qualifies. -#}
{% macro partition_window_filter(agency_column, period_column, lookback_months=0) -%}
    {%- if is_incremental() and var('periods', none) is not none -%}
        {%- set periods = [] -%}
        {%- for period in var('periods') -%}
            {%- set year, month = period.split('-') | map('int') -%}
            {%- for back in range(lookback_months + 1) -%}
                {%- set index = year * 12 + month - 1 - back -%}
                {%- do periods.append('%04d-%02d' % (index // 12, index % 12 + 1)) -%}
            {%- endfor -%}
        {%- endfor -%}
        {{ agency_column }} in ('{{ var("agencies") | join("', '") }}')
        and {{ period_column }} in ('{{ periods | unique | join("', '") }}')
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- A run without a partition window rebuilds the incremental fact whole: empty it first, so
    rows whose period is unknown or gone (a delivery withdrawn) cannot linger. -#}
{% macro full_window_reset() -%}
    {%- if is_incremental() and var('periods', none) is none -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
