-- Every (agency, vocabulary, source label) seen in the contact feeds, resolved to the canonical
-- value of its vocabulary (contact_type: seeds/contact_types.csv, outcome: seeds/outcomes.csv,
-- status: seeds/request_statuses.csv): the agency's own synonym first, then the shared one ('*').
-- No synonym: canonical_value is null and the label is counted as unmapped (mart_feed_health,
-- the WARN suite expectations/contact_values_unmapped.json), never guessed.
with

contacts as (
    select * from {{ ref('stg_contacts__contacts') }}
),

labels as (
    select distinct
        agency_code,
        'contact_type' as vocabulary,
        contact_type_label as source_label
    from contacts
    where contact_type_label is not null
    union
    select distinct
        agency_code,
        'outcome' as vocabulary,
        outcome_label as source_label
    from contacts
    where outcome_label is not null
    union
    select distinct
        agency_code,
        'status' as vocabulary,
        status_label as source_label
    from contacts
    where status_label is not null
),

synonyms as (
    select
        agency_code,
        'contact_type' as vocabulary,
        lower(trim(source_label)) as source_label,
        contact_type as canonical_value
    from {{ ref('contact_type_synonyms') }}
    union all
    select
        agency_code,
        'outcome' as vocabulary,
        lower(trim(source_label)) as source_label,
        outcome as canonical_value
    from {{ ref('outcome_synonyms') }}
    union all
    select
        agency_code,
        'status' as vocabulary,
        lower(trim(source_label)) as source_label,
        status as canonical_value
    from {{ ref('status_synonyms') }}
),

resolved as (
    select
        labels.agency_code,
        labels.vocabulary,
        labels.source_label,
        coalesce(own.canonical_value, shared.canonical_value) as canonical_value
    from labels
    left join synonyms as own
        on
            labels.agency_code = own.agency_code
            and labels.vocabulary = own.vocabulary
            and labels.source_label = own.source_label
    left join synonyms as shared
        on
            shared.agency_code = '*'
            and labels.vocabulary = shared.vocabulary
            and labels.source_label = shared.source_label
)

select * from resolved
