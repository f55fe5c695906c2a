"""Status events: what a relying party's webhook receives when a citizen it
verified is locked, unlocked or deactivated, and how it checks them.

    POST <the party's webhook URL>
    Content-Type: application/json
    Idempotency-Key: evt_…          the event id, the same on every retry
    X-Eid-Signature: <JWS>          detached compact JWS (RFC 7515 appendix F)

    {"audience":"rp_…","id":"evt_…","source":"eid.vn","specversion":"1.0",
     "subject":"sub_…","time":"2026-11-25T08:30:00.123456Z","type":"account.locked"}

The body is a CloudEvents 1.0 event in JSON: `subject` is the citizen's
pairwise subject for the party (the `sub` of its receipts), `audience` the
party's id, `source` the issuer, `time` when the change happened. The
signature is `BASE64URL(header) + ".." + BASE64URL(Ed25519 signature)` over
`BASE64URL(header) + "." + BASE64URL(body bytes)`, with the protected header
{"alg":"EdDSA","iat":<unix seconds when this attempt was signed>,"kid":KEY_ID,
"typ":"eid-status-event+jws"}, by the keys GetVerificationKeys publishes (the
ones that sign receipts), so any JOSE library with detached payloads checks
it against the JWKS. `iat` is fresh on every attempt: a receiver refuses one
far from its clock, so a recorded event cannot be replayed later.

`verify_status_event` checks, in order, and raises the first failure's
reason: size, a signature present, its structure, the key, the signature,
the body, the key's retirement, freshness, issuer, audience. Event types it
does not know are returned, not refused (new types may come; ignore them)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eid_client.offline import KeySet

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_TYPES",
    "IDEMPOTENCY_HEADER",
    "KEYS_MAX_AGE",
    "KEYS_REFETCH_INTERVAL",
    "MAX_BODY_BYTES",
    "REASONS",
    "RETRYABLE_REASONS",
    "SIGNATURE_HEADER",
    "SIGNATURE_TYPE",
    "StatusEvent",
    "StatusEventVerificationError",
    "StatusEventVerifier",
    "encode_status_event",
    "sign_status_event",
    "verify_status_event",
]

SIGNATURE_HEADER = "X-Eid-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_TYPE = "eid-status-event+jws"
EVENT_TYPES = frozenset({"account.locked", "account.unlocked", "account.deactivated"})
MAX_BODY_BYTES = 4096
# How far an attempt's signing time may stray from the receiver's clock.
DEFAULT_TOLERANCE = timedelta(minutes=5)

_MESSAGES = {
    "EVENT_TOO_LARGE": "the event is too large",
    "EVENT_SIGNATURE_MISSING": f"the request carries no {SIGNATURE_HEADER} header",
    "EVENT_MALFORMED": "the event or its signature is damaged or not an eid status event",
    "EVENT_KEY_UNKNOWN": "the event names an unknown signing key (fetch the keys again)",
    "EVENT_KEY_REVOKED": "the key that signed the event was revoked",
    "EVENT_SIGNATURE_INVALID": "the event's signature does not verify",
    "EVENT_SIGNED_AFTER_KEY_RETIRED": "the event was signed after its key was retired",
    "EVENT_STALE": "the event was signed too long ago (or in the future): a replay?",
    "EVENT_ISSUER_MISMATCH": "the event comes from another issuer",
    "EVENT_AUDIENCE_MISMATCH": "the event was meant for another party",
}
REASONS = frozenset(_MESSAGES)
# Refusals a genuine event may pass when eid sends it again (answer 503, not
# 400: eid gives up at once on a 4xx other than 408 and 429): a key eid
# began signing with after the receiver fetched its keys, a signing time
# off the receiver's clock (every attempt is signed afresh).
RETRYABLE_REASONS = frozenset({"EVENT_KEY_UNKNOWN", "EVENT_STALE"})

# How long a receiver trusts the keys it fetched: a key eid revoked is
# refused from the next fetch on.
KEYS_MAX_AGE = timedelta(hours=1)
# At most one fetch this often for events naming a key not held: anyone can
# name one, and must not make a receiver call eid once a request.
KEYS_REFETCH_INTERVAL = timedelta(minutes=1)

_MAX_HEADER_CHARS = 256
_MAX_KEY_ID_BYTES = 64
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_SIGNATURE_CHARS = 86  # 64 bytes
_REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "audience")


class StatusEventVerificationError(Exception):
    """An event refused; `reason` is one of REASONS (no personal data in it).
    `retryable`: a genuine event might pass when sent again, so answer 503
    (eid retries it) rather than 400 (eid drops it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.message = _MESSAGES[reason]
        self.retryable = reason in RETRYABLE_REASONS


def _refuse(reason: str = "EVENT_MALFORMED") -> StatusEventVerificationError:
    return StatusEventVerificationError(reason)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A genuine event. Apply it only if `time` is later than that of the last
    event you applied for `subject`: retries may deliver events out of order."""

    id: str  # evt_…: drop one you have seen (retries resend it)
    type: str  # one of EVENT_TYPES, or a newer type to ignore
    subject: str  # the citizen's pairwise subject for you
    audience: str  # your party id
    issuer: str
    time: datetime  # when the account changed (aware, UTC)
    signed_at: datetime  # when this attempt was signed (aware, UTC, whole seconds)
    key_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(segment: str) -> bytes:
    """Canonical unpadded base64url only (no two texts decode alike)."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        raise _refuse() from None
    if _b64(raw) != segment:
        raise _refuse()
    return raw


def _json(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise _refuse() from None
    if not isinstance(document, dict):
        raise _refuse()
    return document


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_status_event(
    *, event_id: str, type: str, subject: str, audience: str, issuer: str, time: datetime
) -> bytes:
    """The body of an event (compact JSON, sorted keys): what the service sends."""
    if time.utcoffset() is None:
        raise ValueError("time must be aware")
    fields = (event_id, type, subject, audience, issuer)
    if not all(isinstance(f, str) and f for f in fields):
        raise ValueError("every field of an event is a non-empty string")
    document = {
        "specversion": "1.0",
        "id": event_id,
        "source": issuer,
        "type": type,
        "subject": subject,
        "time": _rfc3339(time),
        "audience": audience,
    }
    return _json(document)


def sign_status_event(
    body: bytes, key_id: str, private_key: Ed25519PrivateKey, signed_at: datetime
) -> str:
    """The X-Eid-Signature value of `body` signed now (`signed_at`) with the key."""
    stamp = int(signed_at.timestamp())
    if signed_at.utcoffset() is None or not 0 <= stamp <= _MAX_TIMESTAMP:
        raise ValueError("signed_at must be an aware datetime")
    if not 0 < len(key_id.encode()) <= _MAX_KEY_ID_BYTES:
        raise ValueError(f"the key id must be 1 to {_MAX_KEY_ID_BYTES} bytes")
    header = _b64(_json({"alg": "EdDSA", "iat": stamp, "kid": key_id, "typ": SIGNATURE_TYPE}))
    signature = private_key.sign(f"{header}.{_b64(body)}".encode("ascii"))
    return f"{header}..{_b64(signature)}"


def _signature(headers: Mapping[str, str]) -> str:
    """The signature header, however the web framework cased its name."""
    wanted = SIGNATURE_HEADER.lower()
    found = [v for k, v in headers.items() if k.lower() == wanted]
    if not found or not found[0]:
        raise _refuse("EVENT_SIGNATURE_MISSING")
    if len(found) > 1:
        raise _refuse()
    return found[0].strip()


def _header(segment: str) -> tuple[str, int]:
    """The key id and signing time of the protected header."""
    if len(segment) > _MAX_HEADER_CHARS:
        raise _refuse()
    header = _object(_unb64(segment))
    kid, iat = header.get("kid"), header.get("iat")
    if (
        header.keys() != {"alg", "iat", "kid", "typ"}
        or header["alg"] != "EdDSA"  # never "none", never another algorithm
        or header["typ"] != SIGNATURE_TYPE
        or not isinstance(kid, str)
        or not 0 < len(kid.encode("utf-8", "replace")) <= _MAX_KEY_ID_BYTES
        or type(iat) is not int
        or not 0 <= iat <= _MAX_TIMESTAMP
    ):
        raise _refuse()
    return kid, iat


def _event(document: dict[str, Any], key_id: str, signed_at: datetime) -> StatusEvent:
    values = [document.get(name) for name in _REQUIRED]
    if not all(isinstance(v, str) and v for v in values) or document["specversion"] != "1.0":
        raise _refuse()
    time_text: str = document["time"]
    try:
        at = datetime.fromisoformat(time_text)
        if at.utcoffset() is None:
            raise _refuse()
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):  # in UTC, a year out of datetime's range
        raise _refuse() from None
    return StatusEvent(
        id=document["id"],
        type=document["type"],
        subject=document["subject"],
        audience=document["audience"],
        issuer=document["source"],
        time=at,
        signed_at=signed_at,
        key_id=key_id,
    )


def verify_status_event(
    body: bytes,
    headers: Mapping[str, str],
    keys: KeySet,
    *,
    audience: str | None,
    issuer: str | None = None,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> StatusEvent:
    """The event in `body` (the exact bytes received) if the request's
    X-Eid-Signature is a genuine signature of it by a key of `keys` that is not
    revoked, made within `tolerance` of `now` (default: this machine's clock),
    for `audience` by `issuer` (each checked unless None); otherwise
    StatusEventVerificationError with the reason of the first check that failed.

    `audience` has no default: a receiver that forgot it would take another
    party's events, re-posted to it, as its own. Pass your party id (None
    only to inspect an event by hand)."""
    if len(body) > MAX_BODY_BYTES:
        raise _refuse("EVENT_TOO_LARGE")
    parts = _signature(headers).split(".")
    if len(parts) != 3 or parts[1] or len(parts[2]) != _SIGNATURE_CHARS:
        raise _refuse()
    header_segment, _, signature_segment = parts
    kid, iat = _header(header_segment)
    signature = _unb64(signature_segment)
    key = keys.get(kid)
    if key is None:
        raise _refuse("EVENT_KEY_UNKNOWN")
    if key.revoked:
        raise _refuse("EVENT_KEY_REVOKED")
    try:
        verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
        verifier.verify(signature, f"{header_segment}.{_b64(body)}".encode("ascii"))
    except InvalidSignature:
        raise _refuse("EVENT_SIGNATURE_INVALID") from None
    # Genuine from here on.
    signed_at = datetime.fromtimestamp(iat, UTC)
    event = _event(_object(body), kid, signed_at)
    if key.not_after is not None and signed_at > key.not_after:
        raise _refuse("EVENT_SIGNED_AFTER_KEY_RETIRED")
    current = now if now is not None else datetime.now(UTC)
    if abs(current - signed_at) > tolerance:
        raise _refuse("EVENT_STALE")
    if issuer is not None and event.issuer != issuer:
        raise _refuse("EVENT_ISSUER_MISMATCH")
    if audience is not None and event.audience != audience:
        raise _refuse("EVENT_AUDIENCE_MISMATCH")
    return event


class StatusEventVerifier:
    """verify_status_event with eid's published keys kept current, for a
    webhook: `fetch_keys` (e.g. `client.verification_keys`) is called on the
    first event, again once the keys are older than `keys_max_age` (so a
    revoked key is refused), and when an event names a key not held yet (eid
    rotated its key), at most once a `refetch_interval`. It may raise what
    the fetch raises (eid unreachable): answer 503 then. Safe to share
    between threads."""

    def __init__(
        self,
        fetch_keys: Callable[[], KeySet],
        *,
        audience: str,
        issuer: str | None = None,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        keys_max_age: timedelta = KEYS_MAX_AGE,
        refetch_interval: timedelta = KEYS_REFETCH_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch_keys = fetch_keys
        self._audience = audience
        self._issuer = issuer
        self._tolerance = tolerance
        self._keys_max_age = keys_max_age
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = self._refetched_at = datetime.min.replace(tzinfo=UTC)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> StatusEvent:
        """The genuine event in the request, or StatusEventVerificationError
        (answer 503 if its `retryable`, else 400)."""
        now = self._clock()
        keys = self._current_keys(now)
        try:
            return self._verify(body, headers, keys, now)
        except StatusEventVerificationError as refused:
            if refused.reason != "EVENT_KEY_UNKNOWN":
                raise
            newer = self._refetched_keys(keys, now)
            if newer is None:
                raise
        return self._verify(body, headers, newer, now)

    def _verify(
        self, body: bytes, headers: Mapping[str, str], keys: KeySet, now: datetime
    ) -> StatusEvent:
        return verify_status_event(
            body,
            headers,
            keys,
            audience=self._audience,
            issuer=self._issuer,
            now=now,
            tolerance=self._tolerance,
        )

    def _current_keys(self, now: datetime) -> KeySet:
        with self._lock:
            if self._keys is None or now - self._fetched_at >= self._keys_max_age:
                self._fetch(now)
            assert self._keys is not None
            return self._keys

    def _refetched_keys(self, held: KeySet, now: datetime) -> KeySet | None:
        """Keys fetched since `held`, now if allowed; None if not allowed."""
        with self._lock:
            if self._keys is not held:  # another thread fetched meanwhile
                return self._keys
            if now - self._refetched_at < self._refetch_interval:
                return None
            self._fetch(now)
            self._refetched_at = now
            return self._keys

    def _fetch(self, now: datetime) -> None:
        self._keys = self._fetch_keys()
        self._fetched_at = now
