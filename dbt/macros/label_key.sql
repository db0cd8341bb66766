{#- How a label is compared: a delivered value (a channel, contact type, outcome, status or
    reason label, an answer, a device) and a seed's source_label meet on label_key of both.
    Trimmed of spaces and lower-cased. Its Python twin, for the ingest checks and the registry,
    is dagster_project/registry.py::label_key; tests/transform/test_label_key.py runs this
    macro's SQL in DuckDB beside it on awkward strings (where they differ, it says so). -#}
{% macro label_key(expr) -%}
    lower(trim({{ expr }}))
{%- endmacro %}
