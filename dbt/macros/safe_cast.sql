{#- dbt.safe_cast is a plain CAST on DuckDB and Spark: a bad value would fail the whole model.
    try_cast returns null instead, which the tests downstream then count. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
