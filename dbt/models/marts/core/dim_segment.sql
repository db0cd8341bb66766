-- Customer segments; each service names the segment it mainly serves (dim_service.segment_code).
with

segments as (
    select * from {{ ref('segments') }}
)

select
    segment_code,
    segment_name,
    description
from segments
