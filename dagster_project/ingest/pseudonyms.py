"""Pseudonyms for direct identifiers: a customer's key (a phone number, an email, an account or
Social Security number, as agencies deliver it) never reaches a raw table.

At ingest, a column the contract marks ``pseudonymised`` (``customer_key``) is replaced by its
keyed hash, HMAC-SHA-256 under a secret key, cut to 32 hex characters (128 bits). The same
customer gets the same pseudonym in every delivery, so repeat-contact logic works on it; without
the key nobody can test a guessed phone number against it, as with a plain hash. The original stays
only where every rejected record is kept, ``quarantine.rejected_rows.raw_record`` in the working
warehouse.

The key comes from ``CXW_PSEUDONYM_KEY``. The demo uses a documented default that is not a
secret; a production deployment must set its own. Each ingest-log row records which key was used
(``pseudonym_key``, a fingerprint of the key, not the key). Rotating the key changes every
pseudonym: pseudonyms made under two keys never match, so the loader refuses to add contacts under a
new key to contacts loaded under another, and the rotation is a rebuild from the landing zone
(``make clean && make run`` with the new key). README "Pseudonyms" says the same.
"""

from __future__ import annotations

import hashlib
import hmac
import os

DEMO_KEY = "cxw-demo-pseudonym-key: not a secret, set CXW_PSEUDONYM_KEY"
LENGTH = 32  # hex characters kept: 128 bits, no collision among billions of customers
_BLOCK = 64  # SHA-256's block size: HMAC pads (or first hashes) the key to it


def _key() -> bytes:
    return (os.environ.get("CXW_PSEUDONYM_KEY") or DEMO_KEY).encode()


def key_fingerprint() -> str:
    """Which key made a pseudonym, safe to store and show (it does not reveal the key)."""
    return hashlib.sha256(b"cxw pseudonym key fingerprint\0" + _key()).hexdigest()[:12]


def pseudonym(value: str | None) -> str | None:
    """The pseudonym of one value, in Python (the loader does the same in SQL; a test holds them equal)."""
    if value is None:
        return None
    return hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()[:LENGTH]


def pseudonym_sql(expr: str) -> str:
    """SQL for the pseudonym of a varchar expression: HMAC written out with DuckDB's sha256, so the
    whole column is hashed inside the database. The padded key goes in as blob literals of hex
    escapes, so no byte of it can end the literal."""
    key = _key()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner, outer = (_blob(bytes(b ^ pad for b in key)) for pad in (0x36, 0x5C))
    return f"left(sha256({outer} || unhex(sha256({inner} || encode({expr})))), {LENGTH})"


def _blob(data: bytes) -> str:
    return "'" + "".join(f"\\x{b:02x}" for b in data) + "'::blob"
