{#- A SQL string literal for a Python string (a regular expression, a seed value).
    DuckDB (standard SQL) takes backslashes as they are and doubles a quote; Spark SQL reads
    backslash escapes in literals, so a regex's \b or \. needs its backslash doubled there. -#}
{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'cx_warehouse')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__string_literal(value) -%}
    {{ spark_string_literal(value) }}
{%- endmacro %}

{% macro spark_string_literal(value) -%}
    '{{ value | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
