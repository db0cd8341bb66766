{#- A raw row counts from staging on only when its delivery is live (ingest/lifecycle.py: LIVE,
    status 'loaded' in raw.ingest_log). Rows of a delivery in a status that keeps its rows in raw
    without counting them (lifecycle.IN_RAW but not LIVE: today only 'held', by an operator's
    `cxw deliveries hold` or by a check that failed on it) stay in raw but are left out of the
    warehouse. Every other status has no rows in raw (awaiting_review: nothing applied yet;
    superseded, purged, rejected: deleted or never loaded; accepted: history beside the file's new
    loaded rows), so it needs no condition here. Every staging model filters its raw source with
    this condition; `alias` is the raw table's alias there. A row is matched to its delivery by
    content: file sha256, agency, feed (one file may feed two feeds) and period (a file whose
    records span months has a log row per month), never by the file's name. Rows without lineage
    (no log row) are kept: they are not a delivery's to hold. The GX suites write the same rule
    as {not_held(alias)} (dagster_project/quality/gx_suites.py::not_held). -#}
{% macro not_held(alias) -%}
    not exists (
        select 1
        from {{ source('raw', 'ingest_log') }} as held_log
        where
            held_log.status in {{ statuses('IN_RAW', but_not='LIVE') }}
            and held_log.file_sha256 = {{ alias }}._file_sha256
            and held_log.agency_code = {{ alias }}.agency_code
            and held_log.feed_name = {{ alias }}.feed_name
            and held_log.period = {{ alias }}._period
    )
{%- endmacro %}

{#- ingest/lifecycle.py's named sets of delivery statuses, as dbt models and macros name them
    (tests/quality/test_delivery_identity.py checks them against lifecycle.py). -#}
{% macro delivery_statuses(name) -%}
    {%- set sets = {
        'IN_RAW': ['loaded', 'held'],
        'LIVE': ['loaded'],
        'UNPUBLISHED': ['held', 'awaiting_review'],
        'AWAITING_REVIEW': ['awaiting_review'],
        'ALL': ['loaded', 'held', 'awaiting_review', 'accepted', 'rejected', 'superseded', 'purged'],
    } -%}
    {{ return(sets[name]) }}
{%- endmacro %}

{#- The statuses of the named sets (varargs), less those of `but_not`, as a SQL list for
    `status in ...`: statuses('LIVE', 'UNPUBLISHED') is ('loaded', 'held', 'awaiting_review'). -#}
{% macro statuses() -%}
    {%- set left_out = delivery_statuses(kwargs['but_not']) if 'but_not' in kwargs else [] -%}
    {%- set found = [] -%}
    {%- for name in varargs -%}
        {%- for s in delivery_statuses(name) -%}
            {%- if s not in found and s not in left_out -%}{%- do found.append(s) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    ({%- for s in found -%}'{{ s }}'{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}

{#- One status as a SQL literal, `status = {{ status('held') }}`: a name lifecycle.py does not have
    fails the compile instead of matching no row. -#}
{% macro status(name) -%}
    {%- if name not in delivery_statuses('ALL') -%}
        {{ exceptions.raise_compiler_error("no delivery status '" ~ name ~ "' (ingest/lifecycle.py Status)") }}
    {%- endif -%}
    '{{ name }}'
{%- endmacro %}
