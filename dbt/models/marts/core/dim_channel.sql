-- Canonical channels; is_digital drives the digital-adoption views.
with

channels as (
    select * from {{ ref('channels') }}
)

select
    channel_code,
    channel_name,
    is_digital,
    is_assisted
from channels
