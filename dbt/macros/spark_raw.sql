{#- Spark only (called by dagster_project/scale_out/spark.py through `dbt run-operation`):
    the loader stays on DuckDB, so its raw schema reaches Spark as Parquet files, one folder per
    source table under `location`, registered as external tables in the `raw` database. Dropping
    an external table leaves its files alone; the next export replaces them. -#}
{% macro register_raw_parquet(location, tables) -%}
    {%- if target.type != 'spark' -%}
        {{ exceptions.raise_compiler_error('register_raw_parquet is for the spark target; DuckDB reads raw itself') }}
    {%- endif -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- for table in tables -%}
        {%- do run_query('drop table if exists raw.' ~ table) -%}
        {%- do run_query("create table raw." ~ table ~ " using parquet location '" ~ location ~ "/" ~ table ~ "'") -%}
        {%- do log('raw.' ~ table ~ ' <- ' ~ location ~ '/' ~ table, info=true) -%}
    {%- endfor -%}
{%- endmacro %}
