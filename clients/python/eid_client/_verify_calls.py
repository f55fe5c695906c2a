"""The Verify calls of :class:`~eid_client.EidClient` (:class:`VerifyCalls`) and
:class:`~eid_client.AsyncEidClient` (:class:`AsyncVerifyCalls`): a relying party
verifies a citizen by password, QR share, one-time code (sent by
:meth:`~VerifyCalls.request_otp`) or demographic claim; the citizen reads who
verified them in the access history.

Every successful verification carries the citizen's pairwise subject for the
calling party and a signed receipt (check it with
:func:`eid_client.receipts.verify_receipt` and the published keys). Requests
are built by ``_verify_requests`` for both clients."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client import _verify_requests as vreq
from eid_client._base import Credentials
from eid_client._pages import follow_pages, follow_pages_async
from eid_client._verify_requests import Scopes
from eid_client.biometrics import Finger, Template

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


class VerifyCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def _verify(self, request: pb.VerifyRequest) -> pb.VerifyResponse:
        return self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    def verify_password(
        self,
        *,
        personal_id: str,
        password: str,
        request_id: str | None = None,
        requested_scopes: Scopes = (),
    ) -> pb.VerifyResponse:
        """Relying party: check a citizen's ID number and password. Retry a
        lost answer with the same ``request_id`` to get the same verdict.
        ``requested_scopes`` (``"basic"``, ``"id_number"``, ``"contact"`` or
        the ``Scope`` enum) narrows what is released; none: all the party may read."""
        request = vreq.verify_password_request(
            personal_id=personal_id,
            password=password,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return self._verify(request)

    def redeem_share(
        self, token: str, request_id: str | None = None, *, requested_scopes: Scopes = ()
    ) -> pb.VerifyResponse:
        """Relying party: redeem a scanned QR share token (once). Retry a lost
        answer with the same ``request_id`` to get the same attributes again."""
        return self._verify(vreq.redeem_share_request(token, request_id, requested_scopes))

    def request_otp(
        self, personal_id: str, *, request_id: str | None = None
    ) -> pb.RequestOtpResponse:
        """Relying party: text a 6-digit code, naming the party, to the registered
        phone of the citizen ``personal_id`` names, for :meth:`verify_one_time_code`.
        The answer (when the code expires) is the same whether or not an account
        was found; at most once a minute per party and citizen."""
        request = vreq.request_otp_request(personal_id, request_id)
        return self._call(self._stub.RequestOtp, request, req.api_key_metadata(self.api_key))

    def verify_one_time_code(
        self,
        personal_id: str,
        code: str,
        *,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """Relying party: check the code the citizen received after
        :meth:`request_otp` (this party's, once, before it expires)."""
        request = vreq.one_time_code_request(
            personal_id=personal_id,
            code=code,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return self._verify(request)

    def verify_demographic(
        self,
        personal_id: str,
        *,
        full_name: str | None = None,
        birth_date: datetime.date | str | None = None,
        gender: str | int | None = None,
        partial: bool = False,
        threshold: int | None = None,
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """Relying party: does the claimed data fit the citizen ``personal_id``
        names? Only what is given is claimed (``birth_date`` may be a year,
        ``"1990"``), and ``full_name`` or a full ``birth_date`` must be: the
        gender and birth year alone are in the ID number itself (refused,
        DEMOGRAPHIC_CLAIM_TOO_WEAK). ``response.demographic`` answers per
        attribute; verified means every claim matched. Nothing is released.
        The name must be equal (case and spacing aside) unless ``partial``: a
        0-100 score, blind to diacritics and word order, of at least
        ``threshold`` (80, the default, to 100), answered only when the name
        matched."""
        request = vreq.demographic_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            partial=partial,
            threshold=threshold,
            request_id=request_id,
        )
        return self._verify(request)

    def verify_biometric(
        self,
        personal_id: str,
        *,
        portrait: Template,
        fingerprint: tuple[Finger, Template] | None = None,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """Relying party (with the ``biometric_match`` scope): are this
        portrait template (128 floats or their 512 bytes) and, optionally, this
        ``(finger, template)`` fingerprint the level-2 citizen's ``personal_id``
        names? ``response.biometric`` says, with the scores on a match.
        Attributes are released as for a password."""
        request = vreq.biometric_request(
            personal_id=personal_id,
            portrait=portrait,
            fingerprint=fingerprint,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return self._verify(request)

    def list_access_history(
        self,
        page_size: int = 0,
        page_token: str = "",
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.ListAccessHistoryResponse:
        """Citizen: one page of who verified you (or tried), newest first; see
        :meth:`iter_access_history`. A guardian passes ``dependant_account_id``
        (from :meth:`list_dependants`) for a dependant's history."""
        request = vreq.list_access_history_request(page_size, page_token, dependant_account_id)
        return self._call(self._stub.ListAccessHistory, request, self._session(session_token))

    def iter_access_history(
        self,
        page_size: int = 0,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> Iterator[pb.AccessRecord]:
        """Every record of the access history (or a dependant's), following
        ``next_page_token`` page by page."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first next()

        return follow_pages(
            lambda page_token: self.list_access_history(
                page_size, page_token, token, dependant_account_id=dependant_account_id
            ),
            lambda page: page.records,
        )


class AsyncVerifyCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def _verify(self, request: pb.VerifyRequest) -> pb.VerifyResponse:
        return await self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    async def verify_password(
        self,
        *,
        personal_id: str,
        password: str,
        request_id: str | None = None,
        requested_scopes: Scopes = (),
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.verify_password`."""
        request = vreq.verify_password_request(
            personal_id=personal_id,
            password=password,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return await self._verify(request)

    async def redeem_share(
        self, token: str, request_id: str | None = None, *, requested_scopes: Scopes = ()
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.redeem_share`."""
        return await self._verify(vreq.redeem_share_request(token, request_id, requested_scopes))

    async def request_otp(
        self, personal_id: str, *, request_id: str | None = None
    ) -> pb.RequestOtpResponse:
        """See :meth:`eid_client.EidClient.request_otp`."""
        request = vreq.request_otp_request(personal_id, request_id)
        return await self._call(self._stub.RequestOtp, request, req.api_key_metadata(self.api_key))

    async def verify_one_time_code(
        self,
        personal_id: str,
        code: str,
        *,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.verify_one_time_code`."""
        request = vreq.one_time_code_request(
            personal_id=personal_id,
            code=code,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return await self._verify(request)

    async def verify_demographic(
        self,
        personal_id: str,
        *,
        full_name: str | None = None,
        birth_date: datetime.date | str | None = None,
        gender: str | int | None = None,
        partial: bool = False,
        threshold: int | None = None,
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.verify_demographic`."""
        request = vreq.demographic_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            partial=partial,
            threshold=threshold,
            request_id=request_id,
        )
        return await self._verify(request)

    async def verify_biometric(
        self,
        personal_id: str,
        *,
        portrait: Template,
        fingerprint: tuple[Finger, Template] | None = None,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.verify_biometric`."""
        request = vreq.biometric_request(
            personal_id=personal_id,
            portrait=portrait,
            fingerprint=fingerprint,
            request_id=request_id,
            requested_scopes=requested_scopes,
        )
        return await self._verify(request)

    async def list_access_history(
        self,
        page_size: int = 0,
        page_token: str = "",
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> pb.ListAccessHistoryResponse:
        """See :meth:`eid_client.EidClient.list_access_history`."""
        request = vreq.list_access_history_request(page_size, page_token, dependant_account_id)
        return await self._call(self._stub.ListAccessHistory, request, self._session(session_token))

    def iter_access_history(
        self,
        page_size: int = 0,
        session_token: str | None = None,
        *,
        dependant_account_id: str = "",
    ) -> AsyncIterator[pb.AccessRecord]:
        """Every record of the access history (or a dependant's), page by page
        (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()

        return follow_pages_async(
            lambda page_token: self.list_access_history(
                page_size, page_token, token, dependant_account_id=dependant_account_id
            ),
            lambda page: page.records,
        )
