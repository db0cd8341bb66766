-- The shared contact-reason taxonomy every agency's own reason codes map onto.
with

taxonomy as (
    select * from {{ ref('contact_reason_taxonomy') }}
)

select
    reason_code,
    reason_name,
    reason_group,
    resolution_sla_hours
from taxonomy
