"""eid.v1.IdentityService, QR shares: issue, list, revoke, and the keys that
verify them. Translation only, as in identity_servicer.py."""

from __future__ import annotations

import asyncio

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.qr import qr_png, qr_svg
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.domain.errors import InvalidInput
from eid_service.domain.share import ShareMode
from eid_service.domain.share_grant import ShareGrant, ShareState
from eid_service.domain.signing_key import KeyState
from eid_service.use_cases.replies import Reply
from eid_service.use_cases.share import (
    IssuedShare,
    ShareCommand,
    SharePage,
    list_shares,
    revoke_share,
    share_via_qr,
)
from eid_service.use_cases.signing_keys import PublishedKeys, published_keys

MODE_FROM_PB = {
    pb.SHARE_MODE_UNSPECIFIED: ShareMode.ONLINE,
    pb.SHARE_MODE_ONLINE: ShareMode.ONLINE,
    pb.SHARE_MODE_OFFLINE: ShareMode.OFFLINE,
}
MODE_TO_PB = {ShareMode.ONLINE: pb.SHARE_MODE_ONLINE, ShareMode.OFFLINE: pb.SHARE_MODE_OFFLINE}
STATE_TO_PB = {
    ShareState.ACTIVE: pb.SHARE_STATE_ACTIVE,
    ShareState.REDEEMED: pb.SHARE_STATE_REDEEMED,
    ShareState.EXPIRED: pb.SHARE_STATE_EXPIRED,
    ShareState.REVOKED: pb.SHARE_STATE_REVOKED,
}
KEY_STATE_TO_PB = {
    KeyState.CURRENT: pb.VERIFICATION_KEY_STATE_CURRENT,
    KeyState.RETIRED: pb.VERIFICATION_KEY_STATE_RETIRED,
    KeyState.REVOKED: pb.VERIFICATION_KEY_STATE_REVOKED,
}
ATTRIBUTE_TO_PB = {v: k for k, v in convert.ATTRIBUTE_FROM_PB.items()}


def _mode(value: int) -> ShareMode:
    found: ShareMode | None = MODE_FROM_PB.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidInput.of("mode", "SHARE_MODE_UNKNOWN", "mode must be ONLINE or OFFLINE")
    return found


def _issued_pb(issued: IssuedShare) -> pb.ShareViaQRResponse:
    return pb.ShareViaQRResponse(
        share_id=issued.grant.id,
        token=issued.token,
        expire_time=convert.timestamp(issued.grant.expires_at),
        mode=MODE_TO_PB[issued.grant.mode],
        key_id=issued.key_id,
    )


def share_pb(grant: ShareGrant, state: ShareState) -> pb.Share:
    out = pb.Share(
        share_id=grant.id,
        mode=MODE_TO_PB[grant.mode],
        attributes=sorted(ATTRIBUTE_TO_PB[a] for a in grant.attributes),
        audience_party_id=grant.audience_party_id or "",
        create_time=convert.timestamp(grant.created_at),
        expire_time=convert.timestamp(grant.expires_at),
        multi_use=grant.multi_use,
        state=STATE_TO_PB[state],
        redeem_count=grant.redeem_count,
    )
    if grant.last_redeemed_at is not None:
        out.last_redeem_time.CopyFrom(convert.timestamp(grant.last_redeemed_at))
    if grant.revoked_at is not None:
        out.revoke_time.CopyFrom(convert.timestamp(grant.revoked_at))
    return out


def _keys_pb(published: PublishedKeys) -> pb.GetVerificationKeysResponse:
    out = pb.GetVerificationKeysResponse(jwks_json=published.jwks_json, issuer=published.issuer)
    for key in published.keys:
        entry = out.keys.add(
            key_id=key.record.key_id,
            algorithm="EdDSA",
            public_key=key.record.public_key,
            state=KEY_STATE_TO_PB[key.record.state],
            not_before=convert.timestamp(key.record.created_at),
        )
        if key.not_after is not None:
            entry.not_after.CopyFrom(convert.timestamp(key.not_after))
    return out


class ShareRpcs(ServicerBase):
    async def ShareViaQR(
        self, request: pb.ShareViaQRRequest, context: Context
    ) -> pb.ShareViaQRResponse:
        cmd = ShareCommand(
            attributes=[convert.ATTRIBUTE_FROM_PB.get(a) for a in request.attributes],
            audience_party_id=request.audience_party_id,
            ttl=convert.share_ttl(request),
            mode=_mode(request.mode),
            multi_use=request.multi_use,
            dependant_account_id=request.dependant_account_id,
        )
        image = convert.image_format(request)
        reply = self._reply("share", request, request.request_id, pb.ShareViaQRResponse, _issued_pb)
        response = await share_via_qr(
            self._uow, self._ctx, metadata.bearer_token(context), cmd, reply
        )
        # Drawn after the transaction and off the event loop, only when asked:
        # it is the slowest step, and deterministic, so a replay draws the same.
        if image == "png":
            response.qr_png = await asyncio.to_thread(qr_png, response.token)
        elif image == "svg":
            response.qr_svg = await asyncio.to_thread(qr_svg, response.token)
        return response

    async def ListShares(
        self, request: pb.ListSharesRequest, context: Context
    ) -> pb.ListSharesResponse:
        page: SharePage = await list_shares(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
            request.dependant_account_id,
        )
        now = self._ctx.clock()
        return pb.ListSharesResponse(
            shares=[share_pb(g, g.state(now)) for g in page.shares],
            next_page_token=page.next_page_token,
        )

    async def RevokeShare(
        self, request: pb.RevokeShareRequest, context: Context
    ) -> pb.RevokeShareResponse:
        clock = self._ctx.clock
        reply: Reply[ShareGrant, pb.RevokeShareResponse] = self._reply(
            "revoke_share",
            request,
            request.request_id,
            pb.RevokeShareResponse,
            lambda grant: pb.RevokeShareResponse(share=share_pb(grant, grant.state(clock()))),
        )
        return await revoke_share(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.share_id,
            reply,
            request.dependant_account_id,
        )

    async def GetVerificationKeys(
        self, request: pb.GetVerificationKeysRequest, context: Context
    ) -> pb.GetVerificationKeysResponse:
        published = await published_keys(self._uow, self._ctx.signing_keys, self._ctx.clock())
        return _keys_pb(published)
