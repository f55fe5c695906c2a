"""The QR-share and key calls of :class:`~eid_client.EidClient` (:class:`ShareCalls`)
and :class:`~eid_client.AsyncEidClient` (:class:`AsyncShareCalls`): issue, list
and revoke shares, fetch the keys that verify offline shares, and verify an
offline share with those keys (cached: see :mod:`eid_client.keys_cache`).

Requests are built by ``_requests`` for both, as for every other call."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client._base import Credentials
from eid_client._pages import follow_pages, follow_pages_async
from eid_client.keys_cache import (
    KeyCache,
    OfflineChecks,
    key_set_from_response,
    verify_with_cache,
    verify_with_cache_async,
)
from eid_client.offline import KeySet, OfflineCredential

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


class ShareCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub
    target: str
    _keys_cache: KeyCache | None = None

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def share_via_qr(
        self,
        *,
        attributes: Iterable[str | int],
        audience_party_id: str = "",
        ttl: datetime.timedelta | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
        image_format: str = "none",
        mode: str | int = "online",
        multi_use: bool = False,
        dependant_account_id: str = "",
    ) -> pb.ShareViaQRResponse:
        """Citizen: share the chosen attributes as a signed, expiring QR payload.
        ``mode="online"`` (default): a reference a party redeems with
        :meth:`redeem_share`; ``"offline"``: the attributes themselves, signed, for
        :meth:`verify_offline` with no network call. ``multi_use=True``: parties may
        redeem it online until it expires. ``image_format="png"`` or ``"svg"`` also
        returns the QR image (any QR library draws it faster on the client). A
        guardian shares a dependant's attributes with ``dependant_account_id``
        (from :meth:`list_dependants`)."""
        request = req.share_request(
            attributes=attributes,
            audience_party_id=audience_party_id,
            ttl=ttl,
            request_id=request_id,
            image_format=image_format,
            mode=mode,
            multi_use=multi_use,
            dependant_account_id=dependant_account_id,
        )
        return self._call(self._stub.ShareViaQR, request, self._session(session_token))

    def list_shares(
        self,
        page_size: int = 0,
        page_token: str = "",
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.ListSharesResponse:
        """One page of the citizen's shares, newest first; see :meth:`iter_shares`.
        A guardian passes ``dependant_account_id`` (from :meth:`list_dependants`)
        for the shares made for a dependant."""
        request = req.list_shares_request(page_size, page_token, dependant_account_id)
        return self._call(self._stub.ListShares, request, self._session(session_token))

    def iter_shares(
        self,
        page_size: int = 0,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> Iterator[pb.Share]:
        """Every share the citizen (or the dependant) has, following
        ``next_page_token`` page by page."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first next()

        return follow_pages(
            lambda page_token: self.list_shares(
                page_size, page_token, token, dependant_account_id=dependant_account_id
            ),
            lambda page: page.shares,
        )

    def revoke_share(
        self,
        share_id: str,
        request_id: str | None = None,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.RevokeShareResponse:
        """Withdraw one of the citizen's shares, or with ``dependant_account_id``
        one made for a dependant: online redemption fails at once
        (SHARE_REVOKED). Offline verifiers cannot learn of it: an offline share
        stays checkable until it expires."""
        request = req.revoke_share_request(share_id, request_id, dependant_account_id)
        return self._call(self._stub.RevokeShare, request, self._session(session_token))

    def get_verification_keys(self) -> pb.GetVerificationKeysResponse:
        """The public keys that verify share payloads (no authentication)."""
        return self._call(self._stub.GetVerificationKeys, pb.GetVerificationKeysRequest())

    def verification_keys(self) -> KeySet:
        """The published keys as a :class:`~eid_client.offline.KeySet` for
        :meth:`verify_offline`: revoked keys marked revoked, retired ones with
        the last moment what they signed may be valid."""
        return key_set_from_response(self.get_verification_keys())

    @property
    def keys_cache(self) -> KeyCache:
        """The cache file of this server's keys (see :mod:`eid_client.keys_cache`)."""
        if self._keys_cache is None:
            self._keys_cache = KeyCache.for_target(self.target)
        return self._keys_cache

    def verify_offline(
        self,
        payload: str,
        *,
        keys: KeySet | None = None,
        cache: KeyCache | None = None,
        refresh: bool = False,
        audience: str | None = None,
        issuer: str | None = None,
        now: datetime.datetime | None = None,
        clock_skew: datetime.timedelta = datetime.timedelta(seconds=60),
    ) -> OfflineCredential:
        """Check an OFFLINE share payload and return its attributes, or raise
        :class:`~eid_client.offline.OfflineVerificationError` with the reason.
        With ``keys``, or with keys in the cache (default :attr:`keys_cache`),
        nothing is sent; otherwise the keys are fetched once and cached, and
        fetched again (once) when the payload names a key the cache lacks or
        when ``refresh`` is set. A share bound to a party needs that party's id
        as ``audience``."""
        checks = OfflineChecks(audience=audience, issuer=issuer, now=now, clock_skew=clock_skew)
        if keys is not None:
            return checks.verify(payload, keys)
        return verify_with_cache(
            payload,
            cache or self.keys_cache,
            self.verification_keys,
            checks=checks,
            refresh=refresh,
        )


class AsyncShareCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub
    target: str
    _keys_cache: KeyCache | None = None

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def share_via_qr(
        self,
        *,
        attributes: Iterable[str | int],
        audience_party_id: str = "",
        ttl: datetime.timedelta | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
        image_format: str = "none",
        mode: str | int = "online",
        multi_use: bool = False,
        dependant_account_id: str = "",
    ) -> pb.ShareViaQRResponse:
        """See :meth:`eid_client.EidClient.share_via_qr`."""
        request = req.share_request(
            attributes=attributes,
            audience_party_id=audience_party_id,
            ttl=ttl,
            request_id=request_id,
            image_format=image_format,
            mode=mode,
            multi_use=multi_use,
            dependant_account_id=dependant_account_id,
        )
        return await self._call(self._stub.ShareViaQR, request, self._session(session_token))

    async def list_shares(
        self,
        page_size: int = 0,
        page_token: str = "",
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.ListSharesResponse:
        """See :meth:`eid_client.EidClient.list_shares`."""
        request = req.list_shares_request(page_size, page_token, dependant_account_id)
        return await self._call(self._stub.ListShares, request, self._session(session_token))

    def iter_shares(
        self,
        page_size: int = 0,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> AsyncIterator[pb.Share]:
        """Every share the citizen (or the dependant) has, page by page (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()

        return follow_pages_async(
            lambda page_token: self.list_shares(
                page_size, page_token, token, dependant_account_id=dependant_account_id
            ),
            lambda page: page.shares,
        )

    async def revoke_share(
        self,
        share_id: str,
        request_id: str | None = None,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.RevokeShareResponse:
        """See :meth:`eid_client.EidClient.revoke_share`."""
        request = req.revoke_share_request(share_id, request_id, dependant_account_id)
        return await self._call(self._stub.RevokeShare, request, self._session(session_token))

    async def get_verification_keys(self) -> pb.GetVerificationKeysResponse:
        """The public keys that verify share payloads (no authentication)."""
        return await self._call(self._stub.GetVerificationKeys, pb.GetVerificationKeysRequest())

    async def verification_keys(self) -> KeySet:
        """See :meth:`eid_client.EidClient.verification_keys`."""
        return key_set_from_response(await self.get_verification_keys())

    @property
    def keys_cache(self) -> KeyCache:
        """The cache file of this server's keys (see :mod:`eid_client.keys_cache`)."""
        if self._keys_cache is None:
            self._keys_cache = KeyCache.for_target(self.target)
        return self._keys_cache

    async def verify_offline(
        self,
        payload: str,
        *,
        keys: KeySet | None = None,
        cache: KeyCache | None = None,
        refresh: bool = False,
        audience: str | None = None,
        issuer: str | None = None,
        now: datetime.datetime | None = None,
        clock_skew: datetime.timedelta = datetime.timedelta(seconds=60),
    ) -> OfflineCredential:
        """See :meth:`eid_client.EidClient.verify_offline` (the cache file is
        read and written in a thread)."""
        checks = OfflineChecks(audience=audience, issuer=issuer, now=now, clock_skew=clock_skew)
        if keys is not None:
            return checks.verify(payload, keys)
        return await verify_with_cache_async(
            payload,
            cache or self.keys_cache,
            self.verification_keys,
            checks=checks,
            refresh=refresh,
        )
