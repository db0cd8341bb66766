{#- Numeric semantics that differ between DuckDB and Spark. -#}

{#- Division that gives a double on every adapter. DuckDB's `/` already does, even between
    integers and decimals; Spark keeps exact operands exact (100.0 is a decimal there), so
    100.0 * a / b would be a decimal(38, 14), cut to 6 decimals once precision runs out, and break
    the marts' double contracts. The numerator is converted once it is exact, so both adapters
    divide the same two doubles. Pass a compound denominator in parentheses. -#}
{% macro divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide', 'cx_warehouse')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide(numerator, denominator) -%}
    {{ numerator }} / {{ denominator }}
{%- endmacro %}

{% macro spark__divide(numerator, denominator) -%}
    cast({{ numerator }} as double) / {{ denominator }}
{%- endmacro %}

{#- Round to a whole number, ties to even: what DuckDB's cast from double to integer does (Spark's
    cast truncates instead), written out so both adapters round the same way. -#}
{% macro round_half_even(expr) -%}
    {{ return(adapter.dispatch('round_half_even', 'cx_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__round_half_even(expr) -%}
    round_even({{ expr }}, 0)
{%- endmacro %}

{% macro spark__round_half_even(expr) -%}
    bround({{ expr }})
{%- endmacro %}
