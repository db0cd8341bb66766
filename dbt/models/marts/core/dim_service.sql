-- Services each agency delivers (the "service" of A-11 reporting), type-2: a service that moves
-- to another agency gets a new version row and keeps its history under the old one.
with

services as (
    select * from {{ ref('services') }}
)

select
    agency_code || ':' || service_code || ':' || cast(valid_from as {{ dbt.type_string() }}) as service_version_key,
    agency_code,
    service_code,
    service_name,
    segment_code,
    valid_from,
    valid_to,
    valid_to = cast('9999-12-31' as date) as is_current
from services
