-- OMB A-11 Section 280 drivers and the ACSI construct each feeds.
with

drivers as (
    select * from {{ ref('drivers') }}
)

select
    driver_code,
    driver_name,
    a11_statement,
    acsi_construct
from drivers
