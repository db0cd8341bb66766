{#- One row per calendar day between two date columns of a one-row relation (a CTE), inclusive,
    as column date_day: a calendar whose bounds can come from the data, not only from literals. -#}
{% macro date_series(relation, start_column, end_column) -%}
    {{ return(adapter.dispatch('date_series', 'cx_warehouse')(relation, start_column, end_column)) }}
{%- endmacro %}

{% macro default__date_series(relation, start_column, end_column) -%}
    select cast(unnest(generate_series(
        cast({{ start_column }} as timestamp), cast({{ end_column }} as timestamp), interval 1 day
    )) as date) as date_day
    from {{ relation }}
{%- endmacro %}

{% macro spark__date_series(relation, start_column, end_column) -%}
    select explode(sequence(to_date({{ start_column }}), to_date({{ end_column }}), interval 1 day)) as date_day
    from {{ relation }}
{%- endmacro %}

{#- First day of the federal fiscal year (1 October) that holds the date: the year of the date
    three months later, truncated, then three months back. -#}
{% macro fiscal_year_start(date_expr) -%}
    cast({{ dbt.dateadd('month', -3, dbt.date_trunc('year', dbt.dateadd('month', 3, date_expr))) }} as date)
{%- endmacro %}
