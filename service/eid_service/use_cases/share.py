"""Issue a signed, expiring QR share of chosen attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from eid_service.domain.errors import NotFound
from eid_service.domain.party import parse_party_id
from eid_service.domain.share import (
    Attribute,
    check_share_attributes,
    check_share_ttl,
    new_share_id,
)
from eid_service.domain.share_grant import ShareGrant
from eid_service.security.share_tokens import ShareClaims
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once
from eid_service.use_cases.validation import Violations


@dataclass(frozen=True)
class ShareCommand:
    # None stands for a value the client left unspecified.
    attributes: list[Attribute | None]
    audience_party_id: str
    ttl: timedelta | None


@dataclass(frozen=True)
class IssuedShare:
    grant: ShareGrant
    token: str = field(repr=False)


async def share_via_qr(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    cmd: ShareCommand,
    reply: Reply[IssuedShare, Answer],
) -> Answer:
    """Needs the citizen's session; request ids are scoped to the session."""
    if not session_token:
        raise session_missing()
    now = ctx.clock().replace(microsecond=0)  # tokens carry whole seconds
    v = Violations()
    if any(a is None for a in cmd.attributes):
        v.add("attributes", "ATTRIBUTE_UNSPECIFIED", "every attribute must be specified")
    attrs = v.check(lambda: check_share_attributes(a for a in cmd.attributes if a is not None))
    ttl = v.check(lambda: check_share_ttl(cmd.ttl))
    if cmd.audience_party_id:
        v.check(lambda: parse_party_id(cmd.audience_party_id, "audience_party_id"))
    v.raise_if_any()
    assert attrs is not None and ttl is not None
    audience = cmd.audience_party_id or None
    share_id = new_share_id()
    # Signed before the transaction: it needs nothing stored, and the writer
    # should not wait on it.
    token = ctx.share_tokens.issue(
        ShareClaims(share_id=share_id, audience=audience, issued_at=now, expires_at=now + ttl)
    )
    caller = "session:" + ctx.fingerprint(session_token.encode()).hex()[:32]

    def issue(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        if audience is not None and r.parties.get(audience) is None:
            raise NotFound(
                reason="AUDIENCE_PARTY_NOT_FOUND", message="no approved relying party has this id"
            )
        grant = ShareGrant(
            id=share_id,
            account_id=citizen.id,
            attributes=attrs,
            audience_party_id=audience,
            created_at=now,
            expires_at=now + ttl,
        )
        r.shares.add(grant)
        return reply.finish(r, caller, IssuedShare(grant, token), now)

    return await once(uow, reply, caller, issue)
