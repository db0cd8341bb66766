{#- How an incremental fact replaces its delivery partitions (agency x period), per adapter.
    Returns config values for the model's config() call (model config is the one place an adapter
    difference may sit outside the SQL):
      DuckDB: delete+insert on the partition columns as unique_key.
      Spark:  insert_overwrite of table partitions (parquet files cannot delete rows, and dbt-spark
              silently turns unique_key on parquet into an append: duplicates on every re-run). -#}
{% macro incremental_partition_config(partition_columns) -%}
    {{ return(adapter.dispatch('incremental_partition_config', 'cx_warehouse')(partition_columns)) }}
{%- endmacro %}

{% macro default__incremental_partition_config(partition_columns) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': partition_columns}) }}
{%- endmacro %}

{% macro spark__incremental_partition_config(partition_columns) -%}
    {{ return({
        'incremental_strategy': 'insert_overwrite', 'partition_by': partition_columns, 'file_format': 'parquet'
    }) }}
{%- endmacro %}
