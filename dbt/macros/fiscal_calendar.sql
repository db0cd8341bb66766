{#- Federal fiscal year: FY N runs 1 October N-1 .. 30 September N; Q1 = Oct-Dec. -#}
{% macro fiscal_year(date_expr) -%}
    (extract(year from {{ date_expr }}) + case when extract(month from {{ date_expr }}) >= 10 then 1 else 0 end)
{%- endmacro %}

{% macro fiscal_quarter(date_expr) -%}
    (cast(floor(((extract(month from {{ date_expr }}) + 2) % 12) / 3) as integer) + 1)
{%- endmacro %}
