{#- Free text is personal data. Replace what identifies a person before it leaves staging:
    emails, dates of birth, SSNs (with dashes, spaces or none), card/account numbers (12-19 digits),
    phone numbers, street addresses (any case, with directions), PO boxes and unit numbers.
    Case-insensitive ((?i): RE2 on DuckDB, Java on Spark). Order matters: dates of birth and SSNs
    before long numbers, long numbers before phone numbers, streets before unit numbers. -#}
{% macro redact_pii(text_expr) -%}
    {%- set months = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\\.?" -%}
    {%- set suffixes = "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|parkway|pkwy|place|pl|terrace|ter|circle|cir|highway|hwy|square|sq|trail|trl" -%}
    {%- set patterns = [
        ("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", "[EMAIL]"),
        ("(?i)\\b(?:born(?: on)?|dob|date of birth|birth ?date)\\b[: ]*(?:[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4}|" ~ months ~ " [0-9]{1,2},? [0-9]{4})", "[DOB]"),
        ("\\b[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}\\b", "[SSN]"),
        ("\\b(?:[0-9][ -]?){12,19}\\b", "[ACCOUNT]"),
        ("(?:\\+?1[ .-]?)?\\(?[0-9]{3}\\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}", "[PHONE]"),
        ("(?i)\\b[0-9]{1,6} [a-z0-9 .]{2,40} (?:" ~ suffixes ~ ")\\b\\.?(?: (?:nw|ne|sw|se|n|s|e|w)\\b)?", "[ADDRESS]"),
        ("(?i)\\bp\\.? ?o\\.? ?box ?[0-9]+", "[ADDRESS]"),
        ("(?i)\\b(?:apt|apartment|unit|suite|ste)\\b\\.? ?#? ?[0-9][0-9a-z-]*", "[UNIT]"),
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
