"""Each call's deadline and retry policy, the same for both clients."""

from __future__ import annotations

import math
from collections.abc import Mapping

from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid_client.retry import Attempts, RetryPolicy, is_idempotent

# Long enough for Argon2id on a busy server, short enough that a lost
# connection surfaces while a person is still looking at the screen.
DEFAULT_TIMEOUT = 10.0
RPC_NAMES = frozenset(m.name for m in pb.DESCRIPTOR.services_by_name["IdentityService"].methods)


def _checked(what: str, seconds: float) -> float:
    # No "wait forever": a call without a deadline can hang on a dead peer.
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def rpc_name(request: Message) -> str:
    """The RPC a request message is for: VerifyRequest is Verify's."""
    return request.DESCRIPTOR.name.removesuffix("Request")


class CallSettings:
    """``timeout`` bounds every call (all its attempts together) unless
    ``timeouts`` names the RPC (``{"Verify": 5.0}``); ``retry`` says which
    failures are sent again."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        timeouts: Mapping[str, float] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.timeout = _checked("timeout", timeout)
        unknown = sorted(set(timeouts or {}) - RPC_NAMES)
        if unknown:
            raise ValueError(f"timeouts: no such RPC {', '.join(unknown)} (e.g. 'Verify')")
        self.timeouts = {
            rpc: _checked(f"timeouts[{rpc!r}]", s) for rpc, s in (timeouts or {}).items()
        }
        self.retry = retry if retry is not None else RetryPolicy()

    def timeout_of(self, request: Message | None) -> float:
        if request is None:
            return self.timeout
        return self.timeouts.get(rpc_name(request), self.timeout)

    def attempts(self, request: Message | None, deadline: float | None = None) -> Attempts:
        """The attempts of one call of ``request`` (None: a health check);
        ``deadline``, when the method sets one, replaces the configured one."""
        timeout = self.timeout_of(request) if deadline is None else deadline
        return Attempts(self.retry, timeout, idempotent=is_idempotent(request))
