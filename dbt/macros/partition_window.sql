{#- Incremental facts rebuild only the delivery partitions (agency x period) of the Dagster run:
    agencies and periods ('YYYY-MM') of the run's partition window arrive as comma-separated
    env vars CXW_WINDOW_AGENCIES / CXW_WINDOW_PERIODS (not --vars: changed vars make dbt
    re-parse the whole project, changed env vars only the files that read them). With
    lookback_months / lookahead_months, earlier / later periods of the same agencies qualify
    too (a flag that looks across periods, like a repeat contact, must see both sides). Without
    the vars, or on the first build, every row qualifies. -#}
{% macro window_list(name) -%}
    {{- return(env_var(name, '').split(',') | reject('equalto', '') | list) -}}
{%- endmacro %}

{% macro partition_window_filter(agency_column, period_column, lookback_months=0, lookahead_months=0) -%}
    {%- if is_incremental() and window_list('CXW_WINDOW_PERIODS') -%}
        {%- set periods = [] -%}
        {%- for period in window_list('CXW_WINDOW_PERIODS') -%}
            {%- set year, month = period.split('-') | map('int') -%}
            {%- for back in range(-lookahead_months, lookback_months + 1) -%}
                {%- set index = year * 12 + month - 1 - back -%}
                {%- do periods.append('%04d-%02d' % (index // 12, index % 12 + 1)) -%}
            {%- endfor -%}
        {%- endfor -%}
        {{ agency_column }} in ('{{ window_list("CXW_WINDOW_AGENCIES") | join("', '") }}')
        and {{ period_column }} in ('{{ periods | unique | join("', '") }}')
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- A run without a partition window rebuilds the incremental fact whole: empty it first, so
    rows whose period is unknown or gone (a delivery withdrawn) cannot linger. -#}
{% macro full_window_reset() -%}
    {%- if is_incremental() and not window_list('CXW_WINDOW_PERIODS') -%}
        {{ empty_table(this) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Remove every row of a table. Spark cannot delete from a parquet table (only Delta can):
    truncate empties it, partitions and all. -#}
{% macro empty_table(relation) -%}
    {{ return(adapter.dispatch('empty_table', 'cx_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__empty_table(relation) -%}
    delete from {{ relation }}
{%- endmacro %}

{% macro spark__empty_table(relation) -%}
    truncate table {{ relation }}
{%- endmacro %}
