"""What may be personal data, for every message, log line, audit page and published value that
would show a delivered value: one home for the patterns, so ingest reasons (``checks.shown``), GX
samples, validate-feed warnings, header names in rejected-file reasons and the agency slices agree.
"""

# A free-text value that a spreadsheet would execute: =HYPERLINK(...), +SUM(...), @cmd(...), -2+3...
FORMULA_PATTERN = r"^\s*[=+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(|^\s*=\s*[A-Za-z]{1,3}[0-9]+"

# Messages go to the audit pages and Dagster's logs: a bad value is quoted only when it cannot be
# personal data (a short value of a code, date or number column that looks like none of these);
# otherwise it is described by its shape. The original record stays in quarantine.rejected_rows.raw_record.
SHOWN_MAX = 40
PII_LIKE = "|".join(
    [
        r"@",  # an email address
        r"\d{3}[- .]?\d{2}[- .]?\d{4}",  # a social security number
        r"\(?\d{3}\)?[- .]\d{3}[- .]\d{4}",  # a phone number
        r"\+\d[\d -]{6,}",  # an international phone number
        r"\d{8,}",  # an account, card or other long number
        r"(\d{4}[- ]){2,}\d",  # a card number in groups
        r"(?i:\b\d+[a-z]?\s+([a-z.]+\s+){0,3}(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct"
        r"|crescent|place|pl|way|terrace|parkway|pkwy)\b)",  # a street address
        FORMULA_PATTERN,  # a spreadsheet formula (may carry a mailto: link)
    ]
)

# Header names quoted in a rejected-file reason (readers.safe_name) are judged by their own
# pattern: any run of five digits, and SSNs and phone numbers with any separators (a name holds no
# email or formula: readers._NAME refuses "@" and "=" already).
HEADER_PII_LIKE = r"\d{5}|\d{3}[ .-]\d{2}[ .-]\d{4}|\(?\d{3}\)?[ .-]*\d{3}[ .-]\d{4}"
