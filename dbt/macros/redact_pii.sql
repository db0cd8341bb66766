{#- Free text is personal data. Replace what identifies a person before it leaves staging:
    emails, SSNs, card/account numbers (12-19 digits), phone numbers, street addresses.
    Order matters: SSN and long numbers before phone numbers. -#}
{% macro redact_pii(text_expr) -%}
    {%- set patterns = [
        ("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", "[EMAIL]"),
        ("\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b", "[SSN]"),
        ("\\b(?:[0-9][ -]?){12,19}\\b", "[ACCOUNT]"),
        ("(?:\\+?1[ .-]?)?\\(?[0-9]{3}\\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}", "[PHONE]"),
        ("\\b[0-9]{1,6} [A-Za-z0-9 .]{2,40} (?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Parkway|Pkwy)\\b\\.?", "[ADDRESS]"),
    ] -%}
    {%- set ns = namespace(expr=text_expr) -%}
    {%- for pattern, token in patterns -%}
        {%- set ns.expr = regexp_replace_all(ns.expr, string_literal(pattern), string_literal(token)) -%}
    {%- endfor -%}
    {{ ns.expr }}
{%- endmacro %}

{#- Replace every match: DuckDB needs the 'g' flag, Spark replaces all by default. -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'cx_warehouse')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}
