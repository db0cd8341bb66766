{#- Rows of held deliveries stay in raw but are left out of the warehouse from staging on: a
    delivery is held by an operator (`cxw deliveries hold`) or by a check that failed on it, with
    status 'held' in raw.ingest_log (dagster_project/ingest/deliveries.py). Every staging model
    filters its raw source with this condition; `alias` is the raw table's alias there. A row is
    matched to its delivery by file sha256, agency, feed (one file may feed two feeds) and period
    (a file whose records span months has a log row per month). Rows
    without lineage are kept: they are not a delivery's to hold. -#}
{% macro not_held(alias) -%}
    not exists (
        select 1
        from {{ source('raw', 'ingest_log') }} as held_log
        where
            held_log.status = 'held'
            and held_log.file_sha256 = {{ alias }}._file_sha256
            and held_log.agency_code = {{ alias }}.agency_code
            and held_log.feed_name = {{ alias }}.feed_name
            and held_log.period = {{ alias }}._period
    )
{%- endmacro %}
