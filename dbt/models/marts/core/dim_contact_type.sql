-- Canonical contact types (seeds/contact_types.csv; agency wording in seeds/contact_type_synonyms.csv).
with

contact_types as (
    select * from {{ ref('contact_types') }}
)

select
    contact_type,
    contact_type_name,
    is_queued,
    description
from contact_types
