{#- Local wall time in an IANA time zone of a timestamp stored as naive UTC (every timestamp in
    raw is: the loader converts each feed's local times to UTC). An agency's days, months and
    fiscal quarters are taken from this, never from the UTC timestamp.
      DuckDB: timezone('UTC', ts) reads the naive value as UTC (a timestamptz), timezone(tz, tstz)
              gives its wall time in tz; neither depends on the session time zone.
      Spark:  from_utc_timestamp(ts, tz) shifts a UTC timestamp to tz's wall time. -#}
{% macro utc_to_local(timestamp_expr, timezone_expr) -%}
    {{ return(adapter.dispatch('utc_to_local', 'cx_warehouse')(timestamp_expr, timezone_expr)) }}
{%- endmacro %}

{% macro default__utc_to_local(timestamp_expr, timezone_expr) -%}
    timezone({{ timezone_expr }}, timezone('UTC', {{ timestamp_expr }}))
{%- endmacro %}

{% macro spark__utc_to_local(timestamp_expr, timezone_expr) -%}
    from_utc_timestamp({{ timestamp_expr }}, {{ timezone_expr }})
{%- endmacro %}
