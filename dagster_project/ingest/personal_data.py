"""What may be personal data, for every message, log line, audit page and published value that
would show a delivered value: one home for the patterns, so ingest reasons (``checks.shown``), GX
samples, validate-feed warnings, header names in rejected-file reasons and the agency slices agree;
and how a file name is shown (``shown_name``: escaped, never a new console line).
"""

# A value a spreadsheet would run as a formula (OWASP, CSV injection), in any text column: "="
# followed by anything but a space or ")" (=1+1, =+HYPERLINK(...), =(...)); "+", "-" or "@"
# leading into a function call (@SUM(...), -HYPERLINK(...)), a DDE call (+cmd|' /C calc'!A0) or
# arithmetic that reaches a name or a group (-2+3+cmd|...). Free text starting "- " or "+1" is not.
FORMULA_PATTERN = "|".join(
    [
        r"^\s*=\s*[^\s)]",
        r"^\s*[+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(",
        r"^\s*[+\-@].*\|.*!",
        r"^\s*[+\-@][0-9.\s]*[+\-*/^&]\s*[A-Za-z_(]",
    ]
)
# A code column (a short value that becomes a label: service, channel, reason, queue, status, ...)
# takes nothing a spreadsheet could start a formula with: a leading =, +, -, @, tab or carriage
# return, unless the whole value is a plain number or a lone sign ("-1", "+44", "-").
CODE_FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+\-]?[0-9.,]*$"
# Control characters (line breaks, ANSI escape sequences): a value holding one is never quoted in a
# message, a log line or a page (it could forge a console line or recolour a terminal).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"

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
        CONTROL_CHARACTERS,  # a line break or an escape sequence
    ]
)

# Header names quoted in a rejected-file reason (readers.safe_name) are judged by their own
# pattern: any run of five digits, and SSNs and phone numbers with any separators (a name holds no
# email or formula: readers._NAME refuses "@" and "=" already).
HEADER_PII_LIKE = r"\d{5}|\d{3}[ .-]\d{2}[ .-]\d{4}|\(?\d{3}\)?[ .-]*\d{3}[ .-]\d{4}"

# letters of other scripts drawn like a Latin letter (Cyrillic, Greek, full-width forms are NFKC's)
LOOK_ALIKES = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеорсухіјѕԁһӏԛԝ" + "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοινκρτυχ",
    "ABESIJKMHOPCTXYaeopcyxijsdhlqw" + "ABEZHIKMNOPTYXoivkptux",
)


def shown_name(name: str) -> str:
    """``name`` with everything that is not a plainly printable character escaped, repr-style:
    control characters (``\\n``, ``\\r``, ``\\t``, ``\\x1b``), format and separator characters
    (bidi overrides, zero-width spaces, U+2028), bytes that were not UTF-8 (``\\xff``), letters of
    another script that look like Latin ones (``\\u0410``) and the backslash itself (``\\\\``), so the
    text shown can be read back to the one name and never starts a new line or colours a console."""
    out = []
    for ch in name:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and ch.translate(LOOK_ALIKES) == ch:
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)
