"""One snapshot of the share-signing keys: sign shares and verification
receipts with the current key, read payloads of either mode with every key
that may still verify."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_client import receipts, status_events
from eid_client.offline import (
    CredentialClaims,
    KeySet,
    OfflineVerificationError,
    VerificationKey,
    issue_credential,
    read_genuine,
)
from eid_client.receipts import ReceiptClaims
from eid_service.domain.share_grant import payload_refusal
from eid_service.domain.signing_key import KeyState, SigningKeyRecord
from eid_service.security.share_tokens import (
    MAX_PAYLOAD_CHARS,
    ShareClaims,
    ShareTokenSigner,
    is_online_token,
)
from eid_service.telemetry import spans


@dataclass(frozen=True)
class SigningKey:
    """A key's record and its private half (only the store and this module see it)."""

    record: SigningKeyRecord
    private_key: Ed25519PrivateKey = field(repr=False)


@dataclass(frozen=True)
class PayloadClaims:
    """What a genuine payload of either mode says (times not yet checked)."""

    share_id: str
    audience: str | None
    issued_at: datetime
    expires_at: datetime
    offline: bool


class SigningKeySet:
    """Immutable; build a new one when the keys change."""

    __slots__ = ("_current", "_online", "issuer", "records", "verification_keys")

    def __init__(
        self, keys: Iterable[SigningKey], *, issuer: str, longest_share: timedelta
    ) -> None:
        everything = list(keys)
        current = [k for k in everything if k.record.state is KeyState.CURRENT]
        if len(current) != 1:
            raise ValueError(f"expected one current signing key, found {len(current)}")
        self._current = current[0]
        self.issuer = issuer
        self.records = tuple(k.record for k in everything)
        self.verification_keys = KeySet(
            VerificationKey(
                key_id=k.record.key_id,
                public_key=k.record.public_key,
                not_after=k.record.not_after(longest_share),
                revoked=k.record.state is KeyState.REVOKED,
            )
            for k in everything
        )
        revoked = frozenset(k.record.key_id for k in everything if k.record.revoked_at)
        self._online = ShareTokenSigner(
            self._current.record.key_id,
            {k.record.key_id: k.private_key for k in everything},
            revoked,
        )

    @property
    def current_key_id(self) -> str:
        return self._current.record.key_id

    def issue_online(self, claims: ShareClaims) -> str:
        return self._online.issue(claims)

    def issue_offline(self, claims: CredentialClaims) -> str:
        with spans.span("eid.sign.offline_credential"):
            return issue_credential(claims, self.current_key_id, self._current.private_key)

    def sign_receipt(self, claims: ReceiptClaims) -> str:
        """The signed receipt (compact JWS) of a verification, by the current key."""
        with spans.span("eid.sign.receipt"):
            return receipts.sign_receipt(claims, self.current_key_id, self._current.private_key)

    def sign_status_event(self, body: bytes, signed_at: datetime) -> str:
        """The X-Eid-Signature of a party's status event, by the current key."""
        return status_events.sign_status_event(
            body, self.current_key_id, self._current.private_key, signed_at
        )

    def read(self, payload: str) -> PayloadClaims:
        """The claims of a genuine payload of either mode, expired or not;
        raises the domain error of the first check it fails."""
        if len(payload) <= MAX_PAYLOAD_CHARS and is_online_token(payload):
            online = self._online.read(payload)
            return PayloadClaims(
                online.share_id,
                online.audience,
                online.issued_at,
                online.expires_at,
                offline=False,
            )
        try:
            credential = read_genuine(payload, self.verification_keys)
        except OfflineVerificationError as refused:
            raise payload_refusal(refused.reason) from None
        return PayloadClaims(
            credential.share_id,
            credential.audience,
            credential.issued_at,
            credential.expires_at,
            offline=True,
        )
