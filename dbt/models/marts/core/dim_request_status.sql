-- Canonical service-request statuses (seeds/request_statuses.csv; agency wording in
-- seeds/status_synonyms.csv).
with

statuses as (
    select * from {{ ref('request_statuses') }}
)

select
    status,
    status_name,
    is_closed,
    description
from statuses
