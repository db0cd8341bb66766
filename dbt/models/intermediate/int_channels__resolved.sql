-- Every (agency, source channel label) seen in any feed, resolved to a canonical channel:
-- an agency's own synonym first, then the shared one ('*'), else 'unknown'.
with

labels as (
    select distinct
        agency_code,
        channel_label
    from {{ ref('stg_surveys__responses') }}
    union
    select distinct
        agency_code,
        channel_label
    from {{ ref('stg_surveys__counts') }}
    union
    select distinct
        agency_code,
        channel_label
    from {{ ref('stg_contacts__contacts') }}
),

synonyms as (
    select
        agency_code,
        {{ label_key('source_label') }} as source_label,
        channel_code
    from {{ ref('channel_synonyms') }}
),

resolved as (
    select
        labels.agency_code,
        labels.channel_label,
        coalesce(own.channel_code, shared.channel_code, 'unknown') as channel_code
    from labels
    left join synonyms as own
        on labels.agency_code = own.agency_code and labels.channel_label = own.source_label
    left join synonyms as shared
        on shared.agency_code = '*' and labels.channel_label = shared.source_label
)

select * from resolved
