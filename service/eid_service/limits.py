"""The limits one abusive client must not be able to exhaust for everyone:
per connection, per call and per worker process. Read from EID_* variables
(a bad value stops the start with the variable's name) and turned into the
gRPC server's options here; the per-call ones are enforced by
api/call_limits.py, password work by use_cases/admission.py."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from eid_service import settings_values as values
from eid_service.settings_values import SettingError

KIB = 1024
MIB = 1024 * KIB
PENDING_CALLS = 20_000
# Methods whose requests may exceed max_message_bytes (biometric-sized).
# The registration office's RPCs and biometric Verify carry templates too, but
# a portrait and ten fingerprints are 3 KiB (their largest valid request is
# under 5 KiB): max_message_bytes holds them; more would only let anyone send
# them more before the officer's or party's key is checked.
BIOMETRIC_METHODS = frozenset({"/eid.v1.IdentityService/Register"})


def _hash_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Limits:
    # HTTP/2 streams one connection may hold open at once; more are refused
    # (REFUSED_STREAM), and well-behaved clients queue them.
    max_streams_per_connection: int = 100
    # A unary call's request must arrive within this after its headers: a
    # half-open stream is ended (DEADLINE_EXCEEDED, REQUEST_NOT_RECEIVED).
    request_timeout_seconds: float = 10.0
    # No call runs longer than this, whatever deadline it asked for (none
    # included): it is served with this deadline instead (DEADLINE_CAPPED).
    max_deadline_seconds: float = 60.0
    # Calls being worked on at once in one worker (their request received);
    # more are refused at once with UNAVAILABLE SERVER_BUSY and RetryInfo.
    # A party's approval waits hold a tenth at most (use_cases/approval_waits.py).
    max_concurrent_rpcs: int = 1000
    # Request size per call, and for the methods biometric templates travel in.
    max_message_bytes: int = 64 * KIB
    max_biometric_message_bytes: int = 1 * MIB
    # Responses (QR images, history pages) are ours and may be larger.
    max_send_message_bytes: int = 4 * MIB
    # Password checks (one Argon2id run each) admitted at once per worker,
    # hashing or waiting for a hash thread (four per thread: a check waits
    # for three others at most); more are refused at once with UNAVAILABLE
    # PASSWORD_CHECKS_BUSY, whatever account they name. A quarter of them
    # is kept for relying parties' Verify (sign-ins are anyone's).
    max_password_checks: int = field(default_factory=lambda: 4 * _hash_threads())
    # The server pings a connection this long quiet and drops it when the
    # ping is not answered within the timeout (a peer gone without a word).
    keepalive_time_seconds: float = 60.0
    keepalive_timeout_seconds: float = 20.0
    # Clients may ping at most this often; after 2 strikes: GOAWAY (too_many_pings).
    min_client_ping_interval_seconds: float = 10.0
    # A connection with no call for this long is closed (GOAWAY, then close).
    max_connection_idle_seconds: float = 300.0
    # Every connection is recycled after this (spreads clients over workers
    # and replicas), its calls given the grace to finish; nothing outlives both.
    max_connection_age_seconds: float = 1800.0
    max_connection_age_grace_seconds: float = 30.0
    # A connection must finish its handshake (TLS included) within this.
    handshake_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (value > 0 and math.isfinite(value)):
                raise SettingError(env_name(f.name), f"must be more than 0, not {value}")
        if self.request_timeout_seconds > self.max_deadline_seconds:
            raise SettingError(
                "EID_REQUEST_TIMEOUT_SECONDS", "must not exceed EID_MAX_DEADLINE_SECONDS"
            )
        if self.max_message_bytes > self.max_biometric_message_bytes:
            raise SettingError(
                "EID_MAX_MESSAGE_BYTES", "must not exceed EID_MAX_BIOMETRIC_MESSAGE_BYTES"
            )

    def message_limit(self, method: str) -> int:
        """The largest request `method` (a "/package.Service/Method" path) takes."""
        if method in BIOMETRIC_METHODS:
            return self.max_biometric_message_bytes
        return self.max_message_bytes

    @property
    def max_receive_bytes(self) -> int:
        """The transport's own limit: larger requests are refused before they are read."""
        return self.max_biometric_message_bytes

    def server_options(self) -> list[tuple[str, int]]:
        def ms(seconds: float) -> int:
            return max(1, round(seconds * 1000))

        return [
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            # Plain HTTP/2 accounting of streams: with gRPC's "overload
            # protection" a client's next stream, sent as a finished one's
            # slot frees, could be refused (UNAVAILABLE) instead of queued.
            # A client over the limit is refused streams either way.
            ("grpc.http.overload_protection", 0),
            # Calls gRPC has received and the event loop has not yet picked
            # up: past 1000 (gRPC's default) it refused new ones, anyone's, as
            # a burst of streams was being picked up ("too many pending
            # requests"). Picked up, they meet the limits above. The bound is
            # per queue: eid's methods share one (api/generic_handlers.py),
            # health keeps its own, so a backlog never refuses a probe.
            ("grpc.server.max_pending_requests", PENDING_CALLS),
            ("grpc.server.max_pending_requests_hard_limit", 2 * PENDING_CALLS),
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            ("grpc.keepalive_time_ms", ms(self.keepalive_time_seconds)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_seconds)),
            # What actually drops a peer that never acknowledges a ping: gRPC
            # Core sends the keepalive ping but, without this, waits a minute
            # for its acknowledgement, then sends no more pings on a quiet
            # connection (max_pings_without_data), and the peer stayed until
            # the idle limit (found by a test that set the idle limit apart).
            ("grpc.http2.ping_timeout_ms", ms(self.keepalive_timeout_seconds)),
            # Clients may keep an idle connection warm (within the interval
            # below); the idle limit still closes it.
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                ms(self.min_client_ping_interval_seconds),
            ),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.max_connection_idle_ms", ms(self.max_connection_idle_seconds)),
            ("grpc.max_connection_age_ms", ms(self.max_connection_age_seconds)),
            ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace_seconds)),
            ("grpc.server_handshake_timeout_ms", ms(self.handshake_timeout_seconds)),
        ]


def env_name(field_name: str) -> str:
    return "EID_" + field_name.upper()


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """Limits with each EID_<FIELD> variable set replacing its default."""
    base = Limits()
    given: dict[str, Any] = {}
    for f in fields(Limits):
        name, default = env_name(f.name), getattr(base, f.name)
        if isinstance(default, int):
            given[f.name] = values.integer(env, name, default, minimum=1)
        else:
            given[f.name] = values.number(env, name, default, above=True)
    return Limits(**given)
