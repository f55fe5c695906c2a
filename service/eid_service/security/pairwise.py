"""Pairwise subject identifiers: how each relying party names a citizen.

A party sees a citizen under a subject id of its own, stable across its
verifications of that citizen (the party can keep its records by it) and
unrelated to the id any other party sees, so that parties comparing their
records cannot tell they serve the same person (OpenID Connect's "pairwise"
subject type). Neither the ID number nor the account id is in it.
"""

from __future__ import annotations

import base64

from eid_service.security.keyed_hash import KeyedHasher

PAIRWISE_PURPOSE = "pairwise-subject"
SUBJECT_PREFIX = "sub_"
_SUBJECT_BYTES = 20  # 160 bits: no collision between any two subjects in practice


def pairwise_subject(hasher: KeyedHasher, party_id: str, account_id: str) -> str:
    """The subject id of account `account_id` for party `party_id`: "sub_" and 32
    lowercase base32 characters."""
    # Unlinkable because the hash is keyed with the server's secret (the key
    # ring's HMAC key, derived for this purpose alone): without it, nobody,
    # not the parties and not whoever copies the database, can compute a
    # subject from an account id, nor match one party's subject to another's;
    # a plain hash of the same input would let anyone who knows an account id
    # compute every party's subject. The NUL separator cannot occur in a party
    # id, so ("a", "b\x00c") and ("a\x00b", "c") never hash the same input.
    if "\x00" in party_id:
        raise ValueError("a party id cannot contain NUL")
    digest = hasher.digest(PAIRWISE_PURPOSE, f"{party_id}\x00{account_id}")
    encoded = base64.b32encode(digest[:_SUBJECT_BYTES]).decode("ascii").lower()
    return SUBJECT_PREFIX + encoded  # 20 bytes are 32 characters: no padding
