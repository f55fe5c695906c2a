"""A citizen's QR shares: issue (online reference or offline credential),
list, revoke."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from eid_client.offline import CredentialClaims
from eid_service.domain.errors import InvalidInput, NotFound
from eid_service.domain.party import parse_party_id
from eid_service.domain.share import (
    Attribute,
    ShareMode,
    check_offline_attributes,
    check_share_attributes,
    check_share_ttl,
    new_share_id,
)
from eid_service.domain.share_grant import ShareGrant
from eid_service.security.share_tokens import ShareClaims
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.dependants import acted_by_guardian, acting_for
from eid_service.use_cases.ports import AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once, session_scope
from eid_service.use_cases.validation import Violations

_SHARE_ID = re.compile(r"shr_[0-9a-f]{20,32}")


@dataclass(frozen=True)
class ShareCommand:
    # None stands for a value the client left unspecified.
    attributes: list[Attribute | None]
    audience_party_id: str
    ttl: timedelta | None
    mode: ShareMode = ShareMode.ONLINE
    multi_use: bool = False
    # A guardian sharing a dependant's attributes: the child's account id.
    dependant_account_id: str = ""


@dataclass(frozen=True)
class IssuedShare:
    grant: ShareGrant
    token: str = field(repr=False)
    key_id: str = ""


@dataclass(frozen=True)
class SharePage:
    shares: list[ShareGrant]
    next_page_token: str = ""


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
    now = ctx.clock().replace(microsecond=0)  # payloads carry whole seconds
    v = Violations()
    if any(a is None for a in cmd.attributes):
        v.add("attributes", "ATTRIBUTE_UNSPECIFIED", "every attribute must be specified")
    attrs = v.check(lambda: check_share_attributes(a for a in cmd.attributes if a is not None))
    ttl = v.check(lambda: check_share_ttl(cmd.ttl, cap=ctx.share_policy.max_ttl))
    if cmd.audience_party_id:
        v.check(lambda: parse_party_id(cmd.audience_party_id, "audience_party_id"))
    if attrs is not None:
        v.check(lambda: check_offline_attributes(attrs, cmd.mode))
    v.raise_if_any()
    assert attrs is not None and ttl is not None
    audience = cmd.audience_party_id or None
    share_id = new_share_id(cmd.mode)
    keys = await ctx.signing_keys.current(uow)
    online_token = None
    if cmd.mode is ShareMode.ONLINE:
        # Signed before the transaction: it needs nothing stored, and the
        # writer should not wait on it.
        online_token = keys.issue_online(
            ShareClaims(share_id=share_id, audience=audience, issued_at=now, expires_at=now + ttl)
        )
    caller = session_scope(ctx, session_token)

    def issue(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        owner, issued_by = citizen.id, None
        if cmd.dependant_account_id:
            # A guardian's share of a dependant's attributes: the child's share.
            dependant = acting_for(r, citizen, cmd.dependant_account_id)
            owner, issued_by = dependant.account.id, citizen.id
        if audience is not None and r.parties.get(audience) is None:
            raise NotFound(
                reason="AUDIENCE_PARTY_NOT_FOUND", message="no approved relying party has this id"
            )
        grant = ShareGrant(
            id=share_id,
            account_id=owner,
            attributes=attrs,
            audience_party_id=audience,
            created_at=now,
            expires_at=now + ttl,
            mode=cmd.mode,
            multi_use=cmd.multi_use,
            issued_by=issued_by,
        )
        token = online_token
        if token is None:
            # The offline credential holds the values, so it is signed here,
            # where they are read.
            view = r.accounts.view(owner, attrs)
            assert view is not None
            token = keys.issue_offline(_credential_claims(grant, view.values, keys.issuer))
        r.shares.add(grant)
        if issued_by is not None:
            acted_by_guardian(r, dependant, "share_for_dependant", issued_by, now)
        return reply.finish(r, caller, IssuedShare(grant, token, keys.current_key_id), now)

    return await once(uow, reply, caller, issue)


def _credential_claims(
    grant: ShareGrant, values: dict[Attribute, str], issuer: str
) -> CredentialClaims:
    return CredentialClaims(
        issuer=issuer,
        share_id=grant.id,
        issued_at=grant.created_at,
        expires_at=grant.expires_at,
        audience=grant.audience_party_id,
        personal_id=values.get(Attribute.PERSONAL_ID),
        full_name=values.get(Attribute.FULL_NAME),
        birth_date=values.get(Attribute.BIRTH_DATE),
        gender=values.get(Attribute.GENDER),
        phone_number=values.get(Attribute.PHONE_NUMBER),
        email=values.get(Attribute.EMAIL),
        nationality=values.get(Attribute.NATIONALITY),
    )


async def list_shares(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    page_size: int,
    page_token: str,
    dependant_account_id: str = "",
) -> SharePage:
    """The citizen's shares, newest first (AIP-158 pages), or, for a guardian
    naming one of their dependants, the child's (while the guardian still
    acts for it)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, _SHARE_ID)
    now = ctx.clock()

    def page(r: Repositories) -> SharePage:
        citizen = citizen_of_session(r, session_token, now)
        whose = citizen.id
        if dependant_account_id:
            whose = acting_for(r, citizen, dependant_account_id).account.id
        found = r.shares.page_of(whose, after, size + 1)
        shown = found[:size]
        more = len(found) > size
        return SharePage(shown, pages.next_page_token(shown[-1].id) if more else "")

    return await uow.read(page)


async def revoke_share(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    share_id: str,
    reply: Reply[ShareGrant, Answer],
    dependant_account_id: str = "",
) -> Answer:
    """Withdraws one of the citizen's shares, or, for a guardian naming one of
    their dependants, one of the child's; online redemption fails at once.
    Revoking a revoked or expired share answers the share as it is."""
    if not session_token:
        raise session_missing()
    if not _SHARE_ID.fullmatch(share_id):
        raise InvalidInput.of("share_id", "SHARE_ID_INVALID", "use a share_id from ListShares")
    now = ctx.clock()
    caller = session_scope(ctx, session_token)

    def revoke(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        dependant = None
        if dependant_account_id:
            dependant = acting_for(r, citizen, dependant_account_id)
        owner = citizen.id if dependant is None else dependant.account.id
        grant = r.shares.revoke(share_id, owner, now)
        if grant is None:
            raise NotFound(reason="SHARE_NOT_FOUND", message="no share of yours has this id")
        if dependant is None:
            r.audit.append(AuditEntry(citizen.subject, citizen.id, None, "revoke_share", "ok", now))
        else:
            # In the child's history, as the guardian's act.
            acted_by_guardian(r, dependant, "revoke_share", citizen.id, now)
        return reply.finish(r, caller, grant, now)

    return await once(uow, reply, caller, revoke)
