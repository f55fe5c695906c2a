"""Offline QR credentials: signed, compact, checked with a published key and no network.

The layout is MOSIP Claim 169's: the QR text is raw Base45 (QR alphanumeric
mode, no prefix) of zlib of a COSE_Sign1 (CBOR tag 18, Ed25519 "EdDSA", the
key id as `kid` in the protected header, an empty unprotected header) whose
payload is a CWT: 1 iss, 3 aud (only when bound to one party), 4 exp, 6 iat,
7 cti (the share id: "shr_" + hex of 10 random bytes) and 169, the Claim 169
map: 1 ID, 4 full name (NFC), 8 date of birth ("YYYYMMDD"), 9 gender (1 male,
2 female, 3 other), 11 email, 12 phone (E.164), 13 nationality (a foreigner's,
ISO 3166-1 alpha-3). Attributes the citizen did not choose are not in the map.

Size: with iss "eid.vn", a 6-character kid and a 10-byte cti, a basic-scope
credential (ID, name, birth date, gender) fits a QR of version 10 at error
correction M (311 alphanumeric characters) for names of up to 48 UTF-8 bytes
(Vietnamese letters with diacritics take 2 or 3 bytes; a 40-byte name such as
"Tôn Nữ Hoàng Phương Thảo Nguyên" gives 299 characters). Binding the share to
a party costs the party id: with an "rp_" + 16 hex digits audience, names of
up to 27 bytes fit version 10, longer ones need version 11. A phone number
adds about 24 characters, an email about 1.5 per byte of the address.

Claim 169 readers read these credentials (the tests check the claim169
reference decoder does). This verifier is stricter: it reads only what this
module issues (canonical zlib, minimal CBOR heads, exactly our headers and
claims), so a Claim 169 credential made elsewhere, e.g. by
claim169.encode_with_ed25519 (real deflate, no kid), is refused as
SHARE_PAYLOAD_MALFORMED. Keys and claims this module does not know are refused
too: a verifier must not accept what it cannot fully check.

Checks run in this order, and the first failure's reason is raised: size,
classification (prefix), structure, key, signature, then the claims, which are
not looked at before the signature checks out (the kid only selects the key);
`verify_offline` then checks the key's retirement, expiry, start, issuer and
audience.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eid_client._base45 import b45decode, b45encode

__all__ = [
    "REASONS",
    "CredentialClaims",
    "KeySet",
    "OfflineCredential",
    "OfflineVerificationError",
    "VerificationKey",
    "is_offline_payload",
    "issue_credential",
    "read_genuine",
    "verify_offline",
]

MAX_PAYLOAD_CHARS = 4096
_MAX_COSE_BYTES = 4096  # decompressed; a genuine credential is about 200
_MESSAGES = {
    "SHARE_PAYLOAD_TOO_LARGE": "the payload is too large",
    "SHARE_PAYLOAD_PREFIX_UNKNOWN": "the payload is not an eid share",
    "SHARE_PAYLOAD_VERSION_UNSUPPORTED": "the payload's format or algorithm is not supported",
    "SHARE_ONLINE_ONLY": "an online share can only be redeemed through the eid service",
    "SHARE_PAYLOAD_MALFORMED": "the payload is damaged or incomplete",
    "SHARE_KEY_UNKNOWN": "the payload names an unknown signing key",
    "SHARE_KEY_REVOKED": "the key that signed the payload was revoked",
    "SHARE_SIGNATURE_INVALID": "the payload's signature does not verify",
    "SHARE_EXPIRED": "the credential has expired",
    "SHARE_NOT_YET_VALID": "the credential is not valid yet (check the clock)",
    "SHARE_AUDIENCE_MISMATCH": "the credential is bound to another party",
    "SHARE_ISSUER_MISMATCH": "the credential was issued by another issuer",
}
REASONS = frozenset(_MESSAGES)

_ONLINE = re.compile(r"eid([0-9]+)\.", re.ASCII)
# "eid2." tokens; "eid1." ones, issued before, are redeemed until they expire.
_ONLINE_VERSIONS = ("1", "2")
_SHARE_ID = re.compile(r"shr_((?:[0-9a-f]{2}){8,32})", re.ASCII)
_PERSONAL_ID = re.compile(r"[0-9]{12}", re.ASCII)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_GENDERS = {"male": 1, "female": 2, "other": 3}
_GENDER_NAMES = {v: k for k, v in _GENDERS.items()}
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_CLAIM_KEYS = frozenset({1, 3, 4, 6, 7, 169})
_C169_KEYS = frozenset({1, 4, 8, 9, 11, 12, 13})
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_NATIONALITY = re.compile(r"[A-Z]{3}", re.ASCII)  # ISO 3166-1 alpha-3
# What an issuer would put in key 11: one "@", a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_MAX_EMAIL_CHARS = 254
_PROTECTED_PREFIX = b"\xa2\x01\x27\x04"  # {1: -8 (EdDSA), 4: kid}
_OTHER_COSE_TAGS = frozenset({16, 17, 96, 97, 98})  # Encrypt0, Mac0, Encrypt, Mac, Sign
_SIG1_CONTEXT = b"\x84\x6aSignature1"  # array(4), "Signature1"


class OfflineVerificationError(ValueError):
    """A payload refused; `reason` is one of REASONS, the message holds no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.message = _MESSAGES[reason]


def _refuse(reason: str = "SHARE_PAYLOAD_MALFORMED") -> OfflineVerificationError:
    return OfflineVerificationError(reason)


@dataclass(frozen=True, slots=True)
class CredentialClaims:
    """What the issuer signs. Datetimes are aware and whole seconds."""

    issuer: str
    share_id: str  # "shr_" + hex of the cti (8 to 32 bytes)
    issued_at: datetime
    expires_at: datetime
    audience: str | None
    personal_id: str | None = None
    full_name: str | None = None
    birth_date: str | None = None  # ISO "YYYY-MM-DD"
    gender: str | None = None  # "male", "female" or "other"
    phone_number: str | None = None  # E.164, "+84912345678"
    email: str | None = None
    nationality: str | None = None  # a foreigner's, ISO 3166-1 alpha-3 ("KOR")


@dataclass(frozen=True, slots=True)
class OfflineCredential:
    """What a genuine credential says."""

    share_id: str
    issuer: str
    key_id: str
    issued_at: datetime
    expires_at: datetime
    audience: str | None
    personal_id: str | None
    full_name: str | None
    birth_date: str | None  # ISO "YYYY-MM-DD"
    gender: str | None
    # Last, with defaults: credentials without them read as before.
    phone_number: str | None = None  # E.164
    email: str | None = None
    nationality: str | None = None  # a foreigner's, ISO 3166-1 alpha-3


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key_id: str
    public_key: bytes  # raw 32-byte Ed25519
    not_after: datetime | None = None  # last moment something it signed may be valid
    revoked: bool = False


def _timestamp(name: str, value: datetime) -> int:
    if value.utcoffset() is None or value.microsecond:
        raise ValueError(f"{name} must be an aware datetime in whole seconds")
    seconds = int(value.timestamp())
    if not 0 <= seconds <= _MAX_TIMESTAMP:
        raise ValueError(f"{name} is out of range")
    return seconds


def issue_credential(claims: CredentialClaims, key_id: str, private_key: Ed25519PrivateKey) -> str:
    """The QR text of `claims` signed with `private_key`; ValueError on bad claims."""
    share = _SHARE_ID.fullmatch(claims.share_id)
    iat = _timestamp("issued_at", claims.issued_at)
    exp = _timestamp("expires_at", claims.expires_at)
    kid = key_id.encode()
    if share is None or exp <= iat or not claims.issuer or claims.audience == "":
        raise ValueError("bad share id, validity, issuer or audience")
    if not 0 < len(kid) <= 64:
        raise ValueError("the key id must be 1 to 64 bytes")
    attributes: dict[int, str | int] = {}
    if claims.personal_id is not None:
        attributes[1] = claims.personal_id
    if claims.full_name is not None:
        attributes[4] = claims.full_name
    if claims.birth_date is not None:
        if not _ISO_DATE.fullmatch(claims.birth_date):
            raise ValueError("birth_date must be YYYY-MM-DD")
        attributes[8] = claims.birth_date.replace("-", "")
    if claims.gender is not None:
        if claims.gender not in _GENDERS:
            raise ValueError("gender must be male, female or other")
        attributes[9] = _GENDERS[claims.gender]
    if claims.email is not None:
        attributes[11] = claims.email
    if claims.phone_number is not None:
        attributes[12] = claims.phone_number
    if claims.nationality is not None:
        attributes[13] = claims.nationality
    try:
        _attributes(attributes)  # the verifier's rules, applied before signing
    except OfflineVerificationError:
        raise ValueError(
            "personal_id must be 12 digits, full_name NFC text, phone_number E.164,"
            " email an address, nationality ISO 3166-1 alpha-3"
        ) from None
    cwt: dict[int, object] = {1: claims.issuer}
    if claims.audience is not None:
        cwt[3] = claims.audience
    cwt.update({4: exp, 6: iat, 7: bytes.fromhex(share[1]), 169: attributes})
    payload = cbor2.dumps(cwt)
    protected = cbor2.dumps({1: -8, 4: kid})
    # RFC 9052 Sig_structure (the verifier builds the same bytes by concatenation).
    signature = private_key.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]))
    text = b45encode(zlib.compress(cose, 0))
    if len(text) > MAX_PAYLOAD_CHARS:
        raise ValueError(f"the credential would exceed {MAX_PAYLOAD_CHARS} characters")
    return text


def _stored_zlib(data: bytes) -> bytes:
    """zlib.compress(data, 0) for data of up to 32 KiB (one stored block), without
    setting up a deflate stream (the tests check the two agree)."""
    n = len(data)
    lengths = (n | (n ^ 0xFFFF) << 16).to_bytes(4, "little")
    return b"\x78\x01\x01" + lengths + data + zlib.adler32(data).to_bytes(4, "big")


class KeySet(Mapping[str, VerificationKey]):
    """Immutable mapping key id -> VerificationKey."""

    __slots__ = ("_entries",)

    def __init__(self, keys: Iterable[VerificationKey]) -> None:
        self._entries: dict[str, tuple[VerificationKey, Ed25519PublicKey]] = {}
        for key in keys:
            if key.key_id in self._entries or not key.key_id:
                raise ValueError("key ids must be unique and non-empty")
            if key.not_after is not None and key.not_after.utcoffset() is None:
                raise ValueError("not_after must be aware")
            verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
            self._entries[key.key_id] = (key, verifier)

    def __getitem__(self, key_id: str) -> VerificationKey:
        return self._entries[key_id][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeySet({list(self.values())!r})"

    @classmethod
    def from_jwks(cls, text: str) -> KeySet:
        """The Ed25519 signing keys of an RFC 7517/8037 JWK Set; other keys are ignored."""
        keys = []
        for jwk in _json_list(text, "keys"):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
                continue
            keys.append(VerificationKey(_text(jwk, "kid"), _b64url(jwk.get("x"))))
        return cls(keys)

    def to_jwks(self) -> str:
        """The JWK Set (RFC 7517/8037) of the keys not revoked."""
        jwks = [
            {"kty": "OKP", "crv": "Ed25519", "x": _b64(k.public_key), "kid": k.key_id}
            | {"alg": "EdDSA", "use": "sig"}
            for k in self.values()
            if not k.revoked
        ]
        return json.dumps({"keys": jwks})

    def to_json(self) -> str:
        """Every key with its retirement and revocation: the verifier's cache file."""
        entries = [
            {
                "kid": k.key_id,
                "x": _b64(k.public_key),
                "not_after": None if k.not_after is None else k.not_after.isoformat(),
                "revoked": k.revoked,
            }
            for k in self.values()
        ]
        return json.dumps({"version": 1, "keys": entries})

    @classmethod
    def from_json(cls, text: str) -> KeySet:
        """Read `to_json`'s format; ValueError if it is not that."""
        keys = []
        for entry in _json_list(text, "keys", version=1):
            until = entry.get("not_after")
            if until is not None and not isinstance(until, str):
                raise ValueError("not_after must be an ISO 8601 string or null")
            revoked = entry.get("revoked", False)
            if not isinstance(revoked, bool):
                raise ValueError("revoked must be true or false")
            not_after = None if until is None else datetime.fromisoformat(until)
            keys.append(
                VerificationKey(_text(entry, "kid"), _b64url(entry.get("x")), not_after, revoked)
            )
        return cls(keys)


def _json_list(text: str, field: str, version: int | None = None) -> list[dict[str, Any]]:
    try:
        document = json.loads(text)
    except RecursionError:  # deep nesting: json raises this, not the ValueError promised
        raise ValueError("the JSON document is nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get(field), list):
        raise ValueError(f"expected a JSON object with a {field!r} list")
    if version is not None and document.get("version") != version:
        raise ValueError(f"unsupported version (expected {version})")
    items: list[dict[str, Any]] = document[field]
    if not all(isinstance(item, dict) for item in items):
        raise ValueError(f"every item of {field!r} must be an object")
    return items


def _text(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url(value: object) -> bytes:
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{43}", value):
        raw = base64.urlsafe_b64decode(value + "=")
        if _b64(raw) == value:  # canonical: the unused low bits are zero
            return raw
    raise ValueError("x must be 32 bytes in unpadded base64url")


_ZLIB_HEADS = frozenset(b45encode(bytes([0x78, f])) for f in range(256) if (0x7800 + f) % 31 == 0)


def is_offline_payload(payload: str) -> bool:
    """Whether the payload starts like Base45 of a zlib header (CMF 0x78, FCHECK ok)."""
    return payload[:3] in _ZLIB_HEADS


def _head(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, argument, next position) of the CBOR head at pos; minimal heads only."""
    first = buf[pos]
    info = first & 31
    if info < 24:
        return first >> 5, info, pos + 1
    size = 1 if info == 24 else 2 if info == 25 else 4 if info == 26 else 0
    end = pos + 1 + size
    value = int.from_bytes(buf[pos + 1 : end], "big")
    if not size or end > len(buf) or value < (24 if size == 1 else 1 << (4 * size)):
        raise _refuse()
    return first >> 5, value, end


def _bstr_at(buf: bytes, pos: int) -> tuple[int, int]:
    """(start, end) of the byte string whose head is at pos."""
    first = buf[pos]
    if 0x40 <= first < 0x58:  # the lengths of a credential's parts: one-byte heads,
        start, end = pos + 1, pos + 1 + first - 0x40
    elif first == 0x58 and buf[pos + 1] >= 24:  # or two
        start, end = pos + 2, pos + 2 + buf[pos + 1]
    else:
        major, length, start = _head(buf, pos)
        if major != 2:
            raise _refuse()
        end = start + length
    if end > len(buf):
        raise _refuse()
    return start, end


def _not_canonical(compressed: bytes) -> OfflineVerificationError:
    inflate = zlib.decompressobj()
    try:
        inflate.decompress(compressed, _MAX_COSE_BYTES)
    except zlib.error:
        return _refuse()
    return _refuse(
        "SHARE_PAYLOAD_TOO_LARGE" if inflate.unconsumed_tail else "SHARE_PAYLOAD_MALFORMED"
    )


def _not_sign1(cose: bytes) -> OfflineVerificationError:
    major, tag, _ = _head(cose, 0)
    other_cose = major == 6 and tag in _OTHER_COSE_TAGS
    return _refuse("SHARE_PAYLOAD_VERSION_UNSUPPORTED" if other_cose else "SHARE_PAYLOAD_MALFORMED")


def _unpack(payload: str) -> tuple[bytes, int, int, int, int, str]:
    """Size, classification and structure: (COSE bytes, where the protected
    header's head starts, where it ends, where the payload starts and ends, kid)."""
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise _refuse("SHARE_PAYLOAD_TOO_LARGE")
    if payload[:3] not in _ZLIB_HEADS:
        online = _ONLINE.match(payload)
        if online is None:
            raise _refuse("SHARE_PAYLOAD_PREFIX_UNKNOWN")
        raise _refuse(
            "SHARE_ONLINE_ONLY"
            if online[1] in _ONLINE_VERSIONS
            else "SHARE_PAYLOAD_VERSION_UNSUPPORTED"
        )
    try:
        compressed = b45decode(payload)
    except ValueError:
        raise _refuse() from None
    # Only the canonical form is accepted: we issue zlib.compress(cose, 0), a
    # single stored block, the one encoding of `cose` we make. Inflate ignores
    # the FLEVEL bits of the zlib header and the 5 padding bits of the stored
    # block's header, so without this check flipped bits there would make another
    # payload accepted as the same credential. Checking that the bytes are the
    # stored form of their own content is the same test as "inflates (to the end,
    # nothing after, at most _MAX_COSE_BYTES) to `cose`, and zlib.compress(cose, 0)
    # gives the received bytes back", without setting up two zlib streams; the
    # unit tests check both agree. Other streams are inflated (bounded) only to
    # tell a decompression bomb from damage.
    cose = compressed[7:-4]
    if len(cose) > _MAX_COSE_BYTES or compressed != _stored_zlib(cose):
        raise _not_canonical(compressed)
    try:
        pos = 2 if cose.startswith(b"\xd2\x84") else 1 if cose.startswith(b"\x84") else 0
        if not pos:  # neither COSE_Sign1 (tag 18) nor an untagged 4-array
            raise _not_sign1(cose)
        p_start, p_end = _bstr_at(cose, pos)
        kid = _key_id(cose[p_start:p_end])
        q_start, q_end = _bstr_at(cose, p_end + 1)
    except IndexError:
        raise _refuse() from None
    # An empty unprotected header, and a 64-byte signature with nothing after it.
    if cose[p_end] != 0xA0 or cose[q_end : q_end + 2] != b"\x58\x40" or len(cose) != q_end + 66:
        raise _refuse()
    return cose, pos, p_end, q_start, q_end, kid


def _key_id(protected: bytes) -> str:
    if not protected.startswith(_PROTECTED_PREFIX):
        header = None
        if len(protected) <= 64:
            try:
                header = cbor2.loads(protected)
            except Exception:  # cbor2 raises several types on garbage
                header = None
        alg = header.get(1) if isinstance(header, dict) else None
        other_alg = (type(alg) is int and alg != -8) or isinstance(alg, str)
        raise _refuse(
            "SHARE_PAYLOAD_VERSION_UNSUPPORTED" if other_alg else "SHARE_PAYLOAD_MALFORMED"
        )
    start, end = _bstr_at(protected, 4)
    if end != len(protected) or not 0 < end - start <= 64:
        raise _refuse()
    try:
        return protected[start:].decode()
    except UnicodeDecodeError:
        raise _refuse() from None


def _attributes(
    c169: Mapping[int, object],
) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None, str | None]:
    """(ID, name, ISO birth date, gender, phone, email, nationality) of a Claim
    169 map; the refusal if ill-formed."""
    if not c169.keys() <= _C169_KEYS:
        raise _refuse()
    pid, name, dob, gender = c169.get(1), c169.get(4), c169.get(8), c169.get(9)
    phone, email, nationality = c169.get(12), c169.get(11), c169.get(13)
    if nationality is not None and not (
        isinstance(nationality, str) and _NATIONALITY.fullmatch(nationality)
    ):
        raise _refuse()
    if phone is not None and not (isinstance(phone, str) and _E164.fullmatch(phone)):
        raise _refuse()
    if email is not None and not (
        isinstance(email, str) and len(email) <= _MAX_EMAIL_CHARS and _EMAIL.fullmatch(email)
    ):
        raise _refuse()
    if pid is not None and not (isinstance(pid, str) and _PERSONAL_ID.fullmatch(pid)):
        raise _refuse()
    if name is not None and not (
        isinstance(name, str) and name.strip() and unicodedata.is_normalized("NFC", name)
    ):
        raise _refuse()
    if dob is not None:
        if not (isinstance(dob, str) and len(dob) == 8 and dob.isascii() and dob.isdigit()):
            raise _refuse()
        try:
            dob = date.fromisoformat(dob).isoformat()  # "YYYYMMDD" is ISO 8601 too
        except ValueError:
            raise _refuse() from None
    if gender is not None:
        if type(gender) is not int or gender not in _GENDER_NAMES:
            raise _refuse()
        gender = _GENDER_NAMES[gender]
    return pid, name, dob, gender, phone, email, nationality


def _read(payload: str, keys: KeySet) -> tuple[OfflineCredential, VerificationKey, int, int]:
    cose, p_head, p_end, q_start, q_end, kid = _unpack(payload)
    entry = keys._entries.get(kid)
    if entry is None:
        raise _refuse("SHARE_KEY_UNKNOWN")
    key, verifier = entry
    if key.revoked:
        raise _refuse("SHARE_KEY_REVOKED")
    try:
        # Sig_structure ["Signature1", protected, b"", payload]: the heads are minimal.
        verifier.verify(
            cose[q_end + 2 :],
            _SIG1_CONTEXT + cose[p_head:p_end] + b"\x40" + cose[p_end + 1 : q_end],
        )
    except InvalidSignature:
        raise _refuse("SHARE_SIGNATURE_INVALID") from None
    # Genuine from here on: what follows catches issuer bugs, not attacks.
    try:
        stream = io.BytesIO(cose[q_start:q_end])
        claims = cbor2.CBORDecoder(stream).decode()
    except Exception:  # cbor2 raises several types on garbage
        raise _refuse() from None
    if (
        stream.tell() != q_end - q_start
        or not isinstance(claims, dict)
        or not claims.keys() <= _CLAIM_KEYS
    ):
        raise _refuse()
    iss, aud, exp, iat, cti, c169 = (
        claims.get(1),
        claims.get(3),
        claims.get(4),
        claims.get(6),
        claims.get(7),
        claims.get(169),
    )
    if not (isinstance(iss, str) and iss) or not (aud is None or (isinstance(aud, str) and aud)):
        raise _refuse()
    if type(iat) is not int or type(exp) is not int or not 0 <= iat < exp <= _MAX_TIMESTAMP:
        raise _refuse()
    if not isinstance(cti, bytes) or not 8 <= len(cti) <= 32 or not isinstance(c169, dict):
        raise _refuse()
    pid, name, dob, gender, phone, email, nationality = _attributes(c169)
    issued_at, expires_at = datetime.fromtimestamp(iat, UTC), datetime.fromtimestamp(exp, UTC)
    credential = OfflineCredential(
        "shr_" + cti.hex(),
        iss,
        kid,
        issued_at,
        expires_at,
        aud,
        pid,
        name,
        dob,
        gender,
        phone,
        email,
        nationality,
    )
    return credential, key, iat, exp


def read_genuine(payload: str, keys: KeySet) -> OfflineCredential:
    """The credential if it is well formed and signed by a key of `keys` that is
    not revoked; no time, issuer or audience checks (the server keeps those)."""
    return _read(payload, keys)[0]


def verify_offline(
    payload: str,
    keys: KeySet,
    *,
    now: datetime | None = None,
    audience: str | None = None,
    clock_skew: timedelta = timedelta(seconds=60),
    issuer: str | None = None,
) -> OfflineCredential:
    """The credential in `payload` if it is genuine and valid now, with no network
    call; otherwise OfflineVerificationError with the reason of the first check
    that failed. A credential bound to a party needs that party as `audience`.

    Expired: now >= exp + clock_skew, or the key was retired (`not_after`) before
    iat or more than clock_skew before now. Not yet valid: iat > now + clock_skew.
    """
    credential, key, iat, exp = _read(payload, keys)
    if now is None:
        at = time.time()
    elif now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    else:
        at = now.timestamp()
    skew = clock_skew.total_seconds()
    if key.not_after is not None:
        retired = key.not_after.timestamp()
        if iat > retired or at > retired + skew:
            raise _refuse("SHARE_EXPIRED")
    if at >= exp + skew:
        raise _refuse("SHARE_EXPIRED")
    if iat > at + skew:
        raise _refuse("SHARE_NOT_YET_VALID")
    if issuer is not None and credential.issuer != issuer:
        raise _refuse("SHARE_ISSUER_MISMATCH")
    if credential.audience is not None and credential.audience != audience:
        raise _refuse("SHARE_AUDIENCE_MISMATCH")
    return credential
