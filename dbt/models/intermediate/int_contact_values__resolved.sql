-- Every (agency, vocabulary, source label) seen in the contact feeds, resolved to the canonical
-- value of its vocabulary (contact_type: seeds/contact_types.csv, outcome: seeds/outcomes.csv,
-- status: seeds/request_statuses.csv): the agency's own synonym first, then the shared one ('*').
-- No synonym: canonical_value is null and the label is counted as unmapped (mart_feed_health,
-- the WARN suite expectations/contact_values_unmapped.json), never guessed.
-- one entry per vocabulary: its label column in staging; its seed is <vocabulary>_synonyms
{%- set contact_vocabularies = [
    {'vocabulary': 'contact_type', 'label': 'contact_type_label'},
    {'vocabulary': 'outcome', 'label': 'outcome_label'},
    {'vocabulary': 'status', 'label': 'status_label'},
] %}

with

contacts as (
    select * from {{ ref('stg_contacts__contacts') }}
),

labels as (
    {%- for v in contact_vocabularies %}
        select distinct
            agency_code,
            '{{ v.vocabulary }}' as vocabulary,
            {{ v.label }} as source_label
        from contacts
        where {{ v.label }} is not null
        {%- if not loop.last %}
            union
        {%- endif %}
    {%- endfor %}
),

synonyms as (
    {%- for v in contact_vocabularies %}
        select
            agency_code,
            '{{ v.vocabulary }}' as vocabulary,
            {{ label_key('source_label') }} as source_label,
            {{ v.vocabulary }} as canonical_value
        from {{ ref(v.vocabulary ~ '_synonyms') }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
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
