-- Canonical contact outcomes and the flags every contact mart derives from them
-- (seeds/outcomes.csv; each agency's wording maps onto them in seeds/outcome_synonyms.csv).
with

outcomes as (
    select * from {{ ref('outcomes') }}
)

select
    outcome,
    outcome_name,
    is_queued,
    is_answered,
    is_abandoned,
    is_transferred,
    is_self_service,
    is_resolvable,
    description
from outcomes
