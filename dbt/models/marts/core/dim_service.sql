-- Services each agency delivers (the "service" of A-11 reporting).
with

services as (
    select * from {{ ref('services') }}
)

select
    agency_code || ':' || service_code as service_key,
    agency_code,
    service_code,
    service_name,
    segment_code
from services
