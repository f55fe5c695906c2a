"""The approval flow on :class:`~eid_client.EidClient` (:class:`ApprovalCalls`;
:class:`~eid_client.AsyncEidClient`'s are in ``_approval_calls_async``).

A relying party starts a request (:meth:`~ApprovalCalls.start_approval`) and
shows its verification code; the citizen's app lists it, approves it with
that code or declines it (or first claims it from the party's QR code); the
party waits for the outcome with :meth:`~ApprovalCalls.wait_for_approval` (or
polls :meth:`~ApprovalCalls.verify_approval`), which answers like any Verify:
a verdict, the released attributes, the pairwise subject and a signed receipt.
A request expires after 2 minutes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _approval_requests as areq
from eid_client import _requests as req
from eid_client._base import Credentials
from eid_client._pages import follow_pages
from eid_client._verify_requests import Scopes
from eid_client.errors import EidError

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)

PENDING = "APPROVAL_PENDING"
# Each Verify of wait_for_approval() waits at most this long, so a dropped
# connection costs one short call, not the whole wait.
POLL_SECONDS = 25.0
DEFAULT_WAIT_SECONDS = 130.0


def next_wait(give_up: float, poll: float, last: EidError | None) -> float:
    left = give_up - time.monotonic()
    if left <= 0:
        assert last is not None
        raise last
    return min(poll, left, areq.MAX_WAIT_SECONDS)


def pause_after(pending: EidError, began: float, wait: float, give_up: float) -> float:
    """How long to sleep before asking again: nothing when the server waited
    as asked; its RetryInfo delay (at most a second) when it answered early,
    so a server that cannot wait is not asked in a tight loop."""
    elapsed = time.monotonic() - began
    if elapsed >= wait / 2:
        return 0.0
    if pending.retry_delay is not None:  # google.rpc.RetryInfo, the standard detail
        delay = pending.retry_delay.total_seconds()
    else:
        try:
            delay = float(pending.metadata.get("retry_after_seconds", "1"))
        except ValueError:
            delay = 1.0
    return max(0.0, min(delay, 1.0, give_up - time.monotonic()))


class ApprovalCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
        deadline: float | None = None,
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def start_approval(
        self,
        personal_id: str = "",
        *,
        requested_scopes: Scopes = (),
        message: str = "",
        image_format: str = "none",
        request_id: str | None = None,
    ) -> pb.StartApprovalResponse:
        """Relying party: ask the citizen ``personal_id`` names to approve on
        their phone; show ``verification_code`` next to your prompt. Without
        ``personal_id``, show ``qr_token`` as a QR code (``image_format="png"``
        or ``"svg"`` returns one) for the citizen's app to scan. ``message``
        (at most 100 characters) is shown with the request. The answer is the
        same whether or not the ID number has an account."""
        request = areq.start_approval_request(
            personal_id=personal_id,
            requested_scopes=requested_scopes,
            message=message,
            image_format=image_format,
            request_id=request_id,
        )
        return self._call(self._stub.StartApproval, request, req.api_key_metadata(self.api_key))

    def verify_approval(
        self,
        approval_id: str,
        *,
        wait: float = 0.0,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """Relying party: one Verify of the request, waiting up to ``wait``
        seconds (0 to 120) for the citizen. Still pending: :class:`EidError`
        with reason ``APPROVAL_PENDING``; declined: ``APPROVAL_DECLINED``;
        expired: ``APPROVAL_EXPIRED``; wrong codes: ``APPROVAL_WRONG_CODE``.
        Approved, it verifies once; retry a lost answer with the same ``request_id``."""
        request = areq.approval_verify_request(
            approval_id, wait=wait, requested_scopes=requested_scopes, request_id=request_id
        )
        metadata = req.api_key_metadata(self.api_key)
        return self._call(self._stub.Verify, request, metadata, deadline=wait + self.timeout)

    def wait_for_approval(
        self,
        approval_id: str,
        *,
        within: float = DEFAULT_WAIT_SECONDS,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
        poll: float = POLL_SECONDS,
    ) -> pb.VerifyResponse:
        """Relying party: :meth:`verify_approval` until the citizen decides or
        the request expires (or ``within`` seconds pass: the last
        ``APPROVAL_PENDING`` is raised), with one request id throughout."""
        rid = req.new_request_id(request_id)
        give_up = time.monotonic() + within
        last: EidError | None = None
        while True:
            wait = next_wait(give_up, poll, last)
            began = time.monotonic()
            try:
                return self.verify_approval(
                    approval_id, wait=wait, requested_scopes=requested_scopes, request_id=rid
                )
            except EidError as e:
                if e.reason != PENDING:
                    raise
                last = e
            time.sleep(pause_after(last, began, wait, give_up))

    def list_approval_requests(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListApprovalRequestsResponse:
        """Citizen: one page of the requests waiting for your decision, newest
        first; see :meth:`iter_approval_requests`."""
        request = areq.list_approval_requests_request(page_size, page_token)
        return self._call(self._stub.ListApprovalRequests, request, self._session(session_token))

    def iter_approval_requests(
        self, page_size: int = 0, session_token: str | None = None
    ) -> Iterator[pb.ApprovalRequest]:
        """Every pending request, following ``next_page_token`` page by page."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first next()
        return follow_pages(
            lambda page_token: self.list_approval_requests(page_size, page_token, token),
            lambda page: page.approval_requests,
        )

    def approve(
        self,
        approval_id: str,
        verification_code: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.DecideApprovalResponse:
        """Citizen: approve, confirming the code the relying party shows (a
        wrong one is refused, VERIFICATION_CODE_WRONG, and voids the request)."""
        return self._decide(approval_id, True, verification_code, request_id, session_token)

    def decline(
        self, approval_id: str, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.DecideApprovalResponse:
        """Citizen: decline; the party is told APPROVAL_DECLINED."""
        return self._decide(approval_id, False, "", request_id, session_token)

    def _decide(
        self, approval_id: str, approve: bool, code: str, rid: str | None, session: str | None
    ) -> pb.DecideApprovalResponse:
        request = areq.decide_approval_request(
            approval_id, approve=approve, verification_code=code, request_id=rid
        )
        return self._call(self._stub.DecideApproval, request, self._session(session))

    def claim_approval(
        self, token: str, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.ClaimApprovalResponse:
        """Citizen: take the request whose QR code you scanned as yours, then
        :meth:`approve` or :meth:`decline` it."""
        request = areq.claim_approval_request(token, request_id)
        return self._call(self._stub.ClaimApproval, request, self._session(session_token))
