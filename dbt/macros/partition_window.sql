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

{#- Empty what the run rebuilds before delete+insert fills it again. Without a partition window
    that is the whole fact, so rows whose period is unknown or gone (a delivery withdrawn) cannot
    linger. With one, the window's partitions (and lookback_months before them, the periods the
    model rebuilds): delete+insert only replaces partitions that still have rows, so a partition
    whose only delivery was held or purged (cxw deliveries) would otherwise keep its old rows.
    Spark cannot delete from a parquet table: there insert_overwrite replaces the partitions that
    have rows, and a partition left with none needs a run without a window (make run). -#}
{% macro full_window_reset(lookback_months=0) -%}
    {%- if is_incremental() and not window_list('CXW_WINDOW_PERIODS') -%}
        {{ empty_table(this) }}
    {%- elif is_incremental() -%}
        {{ empty_partitions(this, partition_window_filter('agency_code', 'delivery_period', lookback_months)) }}
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

{#- Remove the rows of some partitions. Spark: nothing (see full_window_reset). -#}
{% macro empty_partitions(relation, condition) -%}
    {{ return(adapter.dispatch('empty_partitions', 'cx_warehouse')(relation, condition)) }}
{%- endmacro %}

{% macro default__empty_partitions(relation, condition) -%}
    delete from {{ relation }} where {{ condition }}
{%- endmacro %}

{% macro spark__empty_partitions(relation, condition) -%}
    select 1
{%- endmacro %}
