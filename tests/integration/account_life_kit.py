"""Raw-stub calls for the account's life (resend, sessions, lock, unlock),
so these tests exercise the wire contract itself, metadata and status
details included, on each database kind."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import error_from_rpc_error, status_from_trailer
from eid_service.domain.citizen import Demographics
from tests.integration.flows import PASSWORD, phone_of, register_and_activate
from tests.integration.harness import ServerHarness


@dataclass
class Refusal:
    code: grpc.StatusCode
    reason: str | None
    message: str
    retry_seconds: int | None


class Wire:
    """One client connection; each call returns the response or a Refusal."""

    def __init__(self, harness: ServerHarness, forwarded_for: str = "198.51.100.7") -> None:
        self._harness = harness
        self._channel = grpc.insecure_channel(harness.target)
        self.stub = pb_grpc.IdentityServiceStub(self._channel)
        # The harness trusts 127.0.0.1 as a proxy: this names the client.
        self.forwarded_for = forwarded_for

    def close(self) -> None:
        self._channel.close()

    def call(self, rpc: str, request: Message, **metadata: str) -> Any:
        pairs = [("x-forwarded-for", self.forwarded_for)]
        pairs += [(k.replace("_", "-"), v) for k, v in metadata.items()]
        try:
            return getattr(self.stub, rpc)(request, timeout=10, metadata=pairs)
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            status = status_from_trailer(cast(Any, e).trailing_metadata() or ())
            retry = None
            for detail in status.details if status is not None else []:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    retry = info.retry_delay.seconds
            return Refusal(error.code, error.reason, error.message, retry)

    def sign_in(self, citizen: Demographics, device: str = "", password: str = PASSWORD) -> Any:
        request = pb.SignInRequest(
            personal_id=citizen.personal_id, password=password, device_name=device
        )
        return self.call("SignIn", request)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@contextlib.contextmanager
def wire(harness: ServerHarness, forwarded_for: str = "198.51.100.7") -> Iterator[Wire]:
    w = Wire(harness, forwarded_for)
    try:
        yield w
    finally:
        w.close()


def activated(harness: ServerHarness, citizen: Demographics) -> None:
    with EidClient(harness.target) as app:
        register_and_activate(harness, app, citizen)


def messages_to(harness: ServerHarness, destination: str, *, at_least: int = 0) -> list[str]:
    """The bodies of every message sent to a phone (E.164) or email so far,
    after waiting (a few seconds at most) for `at_least` of them: delivery
    follows the commit."""
    deadline = time.monotonic() + 5
    while True:
        bodies = [m.body for m in harness.sender.messages if m.destination == destination]
        if len(bodies) >= at_least or time.monotonic() > deadline:
            return bodies
        time.sleep(0.02)


def newest_code(harness: ServerHarness, citizen: Demographics, *, after: int) -> str:
    return harness.wait_for_code(phone_of(citizen)[1], after=after)
