"""Hypothesis-generated requests for every RPC of eid.v1.IdentityService and
eid.v1.RegistrationOfficeService.

The methods come from the service descriptor and the requests from each
method's input descriptor, so a new RPC or field is fuzzed without editing
this file. Requests mix valid-looking values (the seeded citizens' IDs,
phones, codes, tokens), boundary values (empty and ~100 KB strings, int32 and
int64 limits, Duration and Timestamp seconds and nanos just inside and outside
their ranges, unknown enum numbers, oneofs set and unset, repeated fields) and
garbage: random bytes, truncated messages, fields of the wrong wire type and
strings that are not UTF-8 (at any depth), all sent as raw bytes so the server
parses them itself. Metadata is none, a valid credential or a garbage one
(`authorization: Bearer`, `x-api-key`, `x-officer-key`), from a varying
x-forwarded-for address.

Every answer must be OK or a status other than INTERNAL, UNKNOWN and
DATA_LOSS that carries a google.rpc.Status with an ErrorInfo (domain eid.v1,
a reason) in grpc-status-details-bin; the only exception is gRPC's own
RESOURCE_EXHAUSTED for a message over the server's size limit. After a
refused call no row was added, removed or changed in the tables that only
successful calls may change (accounts, codes, sessions, shares, parties,
officers, registry, mode locks, approvals, keys, receipts; the outbox by
count), but for the columns a refusal changes on purpose (a wrong code's
attempt count, a session's last use, the session a reused refresh token
ends, ...: REFUSAL_MAY_CHANGE*). The counting tables (rate counters,
credential attempts, party failures, idempotency records, audit events) may
grow on refusals.

Every method must also be reached: answer OK or a refusal of its own, not
only a decoding or credential refusal (SHALLOW_REASONS); a method the
generated requests did not reach is sent plausible ones with valid
credentials until it is (at most REACH_EXAMPLES).

`make test` runs a few hundred examples per database; `make soak` (EID_SOAK=1)
runs thousands. A failure shows the request's bytes and metadata, the answer
and the server's log, and a `@reproduce_failure(...)` line: to replay it, put
that line above `def one` in `_fuzz` and run the test with
EID_FUZZ_METHOD=<the method>."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import registration_office_service_pb2 as office_pb
from eid_client.client import EidClient
from eid_service.config import Settings
from eid_service.domain.citizen import Demographics
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness

SERVICE = pb.DESCRIPTOR.services_by_name["IdentityService"]
OFFICE = office_pb.DESCRIPTOR.services_by_name["RegistrationOfficeService"]
ALL_METHODS: tuple[MethodDescriptor, ...] = (*SERVICE.methods, *OFFICE.methods)
# EID_FUZZ_METHOD=Verify,SignIn fuzzes only those (to replay a failure).
_ONLY = {m for m in os.environ.get("EID_FUZZ_METHOD", "").split(",") if m}
METHODS = tuple(m for m in ALL_METHODS if not _ONLY or m.name in _ONLY)
assert METHODS, f"EID_FUZZ_METHOD names no method: {sorted(_ONLY)}"
FORBIDDEN = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
DETAILS_KEY = "grpc-status-details-bin"
# Larger requests are refused by the transport itself, without an ErrorInfo.
MAX_MESSAGE_BYTES = Settings().limits.max_receive_bytes
# Tables whose rows only a successful call may add, remove or change.
# Refusals may count themselves in rate_counters, credential_attempts,
# party_failures, token_buckets, idempotency_records and audit_events/
# audit_chains (not checked), and change the columns below.
STRICT_TABLES = (
    "accounts",
    "activation_codes",
    "sessions",
    "spent_refresh_tokens",
    "shares",
    "officers",
    "relying_parties",
    "party_webhooks",
    "registry_citizens",
    "registry_guardians",
    "registry_documents",
    "account_documents",
    "verify_mode_locks",
    "approval_requests",
    "signing_keys",
    "verification_receipts",
)
# The outbox dispatcher marks messages routed and sent on its own schedule:
# only the outbox's row count is compared.
COUNT_SQL = "SELECT count(*) FROM outbox"
# What a refusal may change in them: counts of wrong guesses, times of use.
REFUSAL_MAY_CHANGE: dict[str, frozenset[str]] = {
    "activation_codes": frozenset({"attempts"}),
    "sessions": frozenset({"last_used_at"}),
    "approval_requests": frozenset({"code_attempts"}),
}
# ... and, committed with certain refusals on purpose:
REFUSAL_MAY_CHANGE_FOR_REASON: dict[str, dict[str, frozenset[str]]] = {
    # A spent refresh token presented again ends its session (it was stolen).
    "REFRESH_TOKEN_REUSED": {"sessions": frozenset({"revoked_at", "revoked_reason"})},
    # The third wrong verification code voids the approval request.
    "VERIFICATION_CODE_WRONG": {"approval_requests": frozenset({"state", "decided_at"})},
}
REFUSAL_MAY_CHANGE_FOR_METHOD: dict[str, dict[str, frozenset[str]]] = {
    # A right one-time code, or an approval's outcome, is spent by a Verify
    # then refused after proof (a locked account or mode): told once only.
    "Verify": {
        "activation_codes": frozenset({"consumed_at"}),
        "approval_requests": frozenset({"collected_at"}),
    },
}
# Answers from before a method's own work (the message could not be read,
# the caller is not who may call it): a method that never got past them was
# not reached.
SHALLOW_REASONS = frozenset(
    {
        "REQUEST_UNDECODABLE",
        "REQUEST_TOO_LARGE",
        "REQUEST_ID_INVALID",
        "SESSION_MISSING",
        "SESSION_INVALID",
        "API_KEY_MISSING",
        "API_KEY_INVALID",
        "OFFICER_KEY_INVALID",
        "OFFICER_KEY_MISSING",
        "TOO_MANY_REQUESTS",
    }
)
REACH_EXAMPLES = 60

SOAK = os.environ.get("EID_SOAK") == "1"
EXAMPLES_PER_METHOD = 30
SOAK_EXAMPLES_PER_METHOD = 300

# --- values ------------------------------------------------------------------

INT32 = (0, 1, -1, 2**31 - 1, -(2**31), 2**31 - 2, 1000, 10**9)
INT64 = (
    0,
    1,
    -1,
    2**63 - 1,
    -(2**63),
    2**31,
    -(2**31) - 1,
    315_576_000_000,  # the largest Duration
    315_576_000_001,
    -315_576_000_000,
    -315_576_000_001,
    253_402_300_799,  # 9999-12-31T23:59:59Z, the largest Timestamp
    253_402_300_800,
    -62_135_596_800,  # 0001-01-01T00:00:00Z, the smallest Timestamp
    -62_135_596_801,
    86_400,
    60,
)
NANOS = (0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000, 2**31 - 1, -(2**31))
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\r\n",
    "\u202e\u0644\u0627",  # right-to-left override, Arabic
    "\ufeff",
    "\U0001f600" * 3,
    "e\u0301\u0301\u0301",  # combining accents
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
    "\uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # fullwidth digits
    "Nguy\u1ec5n V\u0103n A",
    "0" * 12,
    "9" * 200,
    "-1",
    "%s%n%x",
    "' OR 1=1 --",
    "../../etc/passwd",
    "Bearer ",
)
# Bytes that are not UTF-8: a stray byte, an overlong NUL, an encoded surrogate,
# a code point past U+10FFFF, a truncated sequence, a continuation byte.
NOT_UTF8 = (b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xe2\x82", b"\x80")


def _huge(parts: tuple[str, int]) -> str:
    char, size_bytes = parts
    return char * max(1, size_bytes // len(char.encode()))


@dataclass(frozen=True)
class Values:
    """Valid-looking strings: `pool` for any string field, `hints` by field
    name (the seeded citizens' IDs for personal_id, the live refresh token for
    refresh_token, ...), so plausible requests reach the use cases."""

    pool: tuple[str, ...]
    hints: dict[str, st.SearchStrategy[str]]

    def plausible(self, f: FieldDescriptor) -> st.SearchStrategy[str]:
        hint = self.hints.get(f.name)
        return st.sampled_from(self.pool) if hint is None else hint


def _strings(pool: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(pool),
        st.sampled_from(ODD_TEXT),
        st.text(max_size=40),
        st.text(st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), max_size=20),
        st.tuples(st.sampled_from(pool), st.text(max_size=3)).map(lambda t: t[0] + t[1]),
        st.tuples(
            st.sampled_from(("a", "9", "\x00", "\u00e9", "\U0001f600")), st.integers(1_000, 100_000)
        ).map(_huge),
    )


def _ints(edges: tuple[int, ...], low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _scalar(f: FieldDescriptor, values: Values, wild: bool) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return _strings(values.pool) if wild else values.plausible(f)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        known = tuple(v.number for v in f.enum_type.values)
        if not wild:
            return st.sampled_from(known)
        return _ints((*known, -1, 99, 2**31 - 1, -(2**31)), -(2**31), 2**31 - 1)
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        if f.name == "nanos":
            return _ints(NANOS, -(2**31), 2**31 - 1)
        return _ints(INT32, -(2**31), 2**31 - 1)
    if t in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        return _ints(INT64, -(2**63), 2**63 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _ints((0, 1, 2**32 - 1), 0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _ints((0, 1, 2**64 - 1), 0, 2**64 - 1)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    raise AssertionError(f"no strategy for field {f.full_name} of type {t}")


def _sub(f: FieldDescriptor) -> Descriptor:
    assert f.message_type is not None
    return f.message_type


def _real_oneof(f: FieldDescriptor) -> Any:
    o = f.containing_oneof
    return None if o is None or getattr(o, "is_synthetic", False) else o


@st.composite
def messages(
    draw: st.DrawFn, descriptor: Descriptor, values: Values, wild: bool, depth: int = 0
) -> Message:
    """A message of this type, any field set or not, each real oneof holding one
    of its members or none."""
    message = message_factory.GetMessageClass(descriptor)()
    chosen = {
        o.name: draw(st.sampled_from((None, *o.fields)))
        for o in descriptor.oneofs
        if not getattr(o, "is_synthetic", False)
    }
    for f in descriptor.fields:
        oneof = _real_oneof(f)
        if oneof is not None:
            if chosen[oneof.name] is not f:
                continue
        elif not draw(st.booleans() if wild else st.sampled_from((True, True, True, False))):
            continue
        repeated = f.is_repeated
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 3:
                continue
            if repeated:
                for item in draw(st.lists(messages(_sub(f), values, wild, depth + 1), max_size=3)):
                    getattr(message, f.name).add().CopyFrom(item)
            else:
                sub = getattr(message, f.name)
                sub.SetInParent()
                sub.CopyFrom(draw(messages(_sub(f), values, wild, depth + 1)))
        elif repeated:
            size = (
                st.one_of(st.integers(0, 6), st.sampled_from((100, 5_000))) if wild else st.just(0)
            )
            items = draw(st.lists(_scalar(f, values, wild), min_size=0, max_size=6))
            count = draw(size)
            if count > len(items) and items:
                items = (items * (count // len(items) + 1))[:count]
            getattr(message, f.name).extend(items)
        else:
            setattr(message, f.name, draw(_scalar(f, values, wild)))
    return message


# --- raw wire bytes ----------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _holds_string(descriptor: Descriptor, depth: int = 0) -> bool:
    return depth < 4 and any(
        f.type == FieldDescriptor.TYPE_STRING
        or (f.type == FieldDescriptor.TYPE_MESSAGE and _holds_string(_sub(f), depth + 1))
        for f in descriptor.fields
    )


@st.composite
def not_utf8_inside(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """A string field, at any depth, holding bytes that are not UTF-8."""
    candidates = [
        f
        for f in descriptor.fields
        if f.type == FieldDescriptor.TYPE_STRING
        or (f.type == FieldDescriptor.TYPE_MESSAGE and _holds_string(_sub(f)))
    ]
    f = draw(st.sampled_from(candidates))
    if f.type == FieldDescriptor.TYPE_STRING:
        bad = draw(st.sampled_from(NOT_UTF8))
        prefix = draw(st.text(max_size=8)).encode()
        return _length_delimited(f.number, prefix + bad)
    return _length_delimited(f.number, draw(not_utf8_inside(_sub(f))))


@st.composite
def payloads(draw: st.DrawFn, descriptor: Descriptor, values: Values) -> bytes:
    wild = draw(st.booleans())
    if not wild:
        return draw(messages(descriptor, values, False)).SerializeToString()
    kind = draw(
        st.sampled_from(("message", "message", "message", "not-utf8", "bytes", "truncated", "wire"))
    )
    if kind == "bytes":
        return draw(st.binary(max_size=256))
    if kind == "not-utf8" and _holds_string(descriptor):
        before = draw(messages(descriptor, values, True)).SerializeToString()
        return before + draw(not_utf8_inside(descriptor))
    body = draw(messages(descriptor, values, True)).SerializeToString()
    if kind == "truncated" and body:
        return body[: draw(st.integers(0, len(body) - 1))]
    if kind == "wire":
        # A known field with the wrong wire type, a length past the end, or
        # an unknown field numbered up to the largest allowed.
        number = draw(
            st.sampled_from([f.number for f in descriptor.fields] + [536_870_911, 19_000, 99])
        )
        wire_type = draw(st.sampled_from((0, 1, 2, 3, 4, 5, 6, 7)))
        tail = draw(
            st.one_of(
                st.binary(max_size=16),
                st.just(_varint(2**31) + b"x"),
                st.just(_varint(2**64 - 1)),
            )
        )
        return body + _varint(number << 3 | wire_type) + tail
    return body


# --- metadata ----------------------------------------------------------------

GARBAGE_HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


@dataclass(frozen=True)
class Header:
    """A metadata entry; `value` None means the seeded valid credential."""

    name: str
    value: str | None

    def resolve(self, world: World) -> tuple[str, str]:
        if self.value is not None:
            return self.name, self.value
        if self.name == "authorization":
            return self.name, f"Bearer {world.session_token}"
        if self.name == "x-api-key":
            return self.name, world.api_key
        return self.name, world.officer_key


VALID_HEADERS = st.lists(
    st.sampled_from(("authorization", "x-api-key", "x-officer-key")).map(lambda n: Header(n, None)),
    min_size=1,
    max_size=3,
    unique=True,
).map(tuple)
WILD_HEADERS: st.SearchStrategy[tuple[Header, ...]] = st.lists(
    st.one_of(
        st.sampled_from(("authorization", "x-api-key", "x-officer-key")).map(
            lambda n: Header(n, None)
        ),
        GARBAGE_HEADER.map(lambda t: Header("authorization", f"Bearer {t}")),
        GARBAGE_HEADER.map(lambda t: Header("authorization", t)),
        GARBAGE_HEADER.map(lambda t: Header("x-api-key", t)),
        GARBAGE_HEADER.map(lambda t: Header("x-officer-key", t)),
    ),
    max_size=2,
).map(tuple)
HEADERS = st.one_of(VALID_HEADERS, WILD_HEADERS)
# Each example from its own address, so per-source throttles do not make
# every later call a shallow RESOURCE_EXHAUSTED.
SOURCES = st.tuples(*(st.integers(1, 254) for _ in range(3))).map(
    lambda t: f"10.{t[0]}.{t[1]}.{t[2]}"
)


# --- the seeded server -------------------------------------------------------


@dataclass
class World:
    harness: ServerHarness
    channel: grpc.Channel
    citizen: Demographics
    api_key: str
    officer_key: str
    session_token: str = ""
    refresh_token: str = ""
    session_id: str = ""
    values: Values = Values((), {})
    logs: list[logging.LogRecord] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=dict)
    # Methods that answered OK or a refusal of their own (not SHALLOW_REASONS).
    reached: set[str] = field(default_factory=set)
    # The strict tables after the last call (None: read them again).
    last: Snapshot | None = None

    def sign_in(self) -> None:
        """A fresh session for the seeded citizen, unlocked first if a fuzzed
        call locked the account (best effort: throttles may refuse)."""
        officer = pb.UnlockAccountRequest(
            officer=pb.UnlockByOfficer(personal_id=self.citizen.personal_id)
        )
        self.raw(
            "UnlockAccount", officer.SerializeToString(), (("x-officer-key", self.officer_key),)
        )
        request = pb.SignInRequest(personal_id=self.citizen.personal_id, password=PASSWORD)
        code, answer, _ = self.raw("SignIn", request.SerializeToString(), ())
        if code == grpc.StatusCode.OK:
            response = pb.SignInResponse.FromString(answer)
            self.session_token = response.session_token
            self.refresh_token = response.refresh_token
            self.session_id = response.session_id

    def raw(
        self, method: str, payload: bytes, metadata: tuple[tuple[str, str], ...]
    ) -> tuple[grpc.StatusCode, bytes, tuple[tuple[str, str | bytes], ...]]:
        # A bare name is one of IdentityService's methods.
        path = method if method.startswith("/") else f"/{SERVICE.full_name}/{method}"
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary(
            path, request_serializer=None, response_deserializer=None
        )
        try:
            answer = call(payload, metadata=metadata, timeout=30)
        except grpc.RpcError as e:
            code: grpc.StatusCode = e.code()  # type: ignore[attr-defined, unused-ignore]
            kept = e.trailing_metadata() or ()  # type: ignore[attr-defined, unused-ignore]
            return code, b"", tuple((str(m.key), m.value) for m in kept)
        return grpc.StatusCode.OK, answer, ()

    def snapshot(self) -> Snapshot:
        """Every row of the strict tables, and the outbox's row count (one
        round trip on PostgreSQL, where each costs most)."""
        tables: dict[str, list[Row]] = {}
        with self.harness.runtime.uow.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                found = connection.execute(text(PG_SNAPSHOT_SQL)).one()
                for table, rows in zip(STRICT_TABLES, found[:-1], strict=True):
                    tables[table] = [tuple(sorted(row.items())) for row in rows]
                return Snapshot(tables, int(found[-1]))
            for table in STRICT_TABLES:
                # The table names are the constants above.
                result = connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
                names = tuple(result.keys())
                tables[table] = [tuple(zip(names, row, strict=True)) for row in result]
            outbox = int(connection.execute(text(COUNT_SQL)).scalar_one())
        return Snapshot(tables, outbox)


# A row as (column, value) pairs.
Row = tuple[tuple[str, Any], ...]
# The table names are the constants above.
_AGGREGATES = ", ".join(
    f"(SELECT coalesce(json_agg(t), '[]') FROM {t} t)"  # noqa: S608
    for t in STRICT_TABLES
)
PG_SNAPSHOT_SQL = f"SELECT {_AGGREGATES}, ({COUNT_SQL})"


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, list[Row]]
    outbox: int

    def changes(self, after: Snapshot, method: str, reason: str) -> dict[str, int]:
        """Rows added, removed or changed per table, beyond what a refusal
        for this reason by this method may change."""
        allowed: dict[str, set[str]] = {t: set(c) for t, c in REFUSAL_MAY_CHANGE.items()}
        for extra in (
            REFUSAL_MAY_CHANGE_FOR_REASON.get(reason, {}),
            REFUSAL_MAY_CHANGE_FOR_METHOD.get(method, {}),
        ):
            for table, columns in extra.items():
                allowed.setdefault(table, set()).update(columns)
        changed: dict[str, int] = {}
        for table, rows in self.tables.items():
            skip = allowed.get(table, set())
            old = Counter(tuple(kv for kv in row if kv[0] not in skip) for row in rows)
            new = Counter(
                tuple(kv for kv in row if kv[0] not in skip) for row in after.tables[table]
            )
            if old != new:
                changed[table] = sum(((old - new) + (new - old)).values())
        if after.outbox != self.outbox:
            changed["outbox"] = after.outbox - self.outbox
        return changed


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture
def world(
    harness: ServerHarness, bank: Party, citizen_app: EidClient, adults: list[Demographics]
) -> Iterator[World]:
    """An active citizen with a session and a live QR share, a pending citizen
    with a code, a party and an officer: enough for calls to go deep."""
    active, pending, unregistered = adults[0], adults[1], adults[2]
    register_and_activate(harness, citizen_app, active)
    seen = len(harness.sender.messages)
    register(citizen_app, pending)
    code = harness.wait_for_code(phone_of(pending)[1], after=seen)
    _, officer_key = harness.run(
        harness.runtime.uow.atomically(lambda r: r.officers.create("Officer Fuzz", harness.clock()))
    )
    handler_logs: list[logging.LogRecord] = []
    handler = _Collect(handler_logs)
    logging.getLogger().addHandler(handler)
    with grpc.insecure_channel(harness.target) as channel:
        w = World(harness, channel, active, bank.api_key, officer_key, logs=handler_logs)
        w.sign_in()
        assert w.session_token, "the seeded citizen could not sign in"
        share = citizen_app.share_via_qr(
            attributes=["full_name"],
            session_token=w.session_token,
            audience_party_id=bank.party.id,
        )
        # Approval requests for the citizen's app: one named, one by QR.
        approvals = []
        for started in (
            pb.StartApprovalRequest(personal_id=active.personal_id),
            pb.StartApprovalRequest(image_format=pb.QR_IMAGE_FORMAT_NONE),
        ):
            code_, answer, _ = w.raw(
                "StartApproval", started.SerializeToString(), (("x-api-key", bank.api_key),)
            )
            assert code_ == grpc.StatusCode.OK, f"StartApproval answered {code_.name}"
            approvals.append(pb.StartApprovalResponse.FromString(answer))
        named, by_qr = approvals
        citizens = (active, pending, unregistered)
        ids = tuple(c.personal_id for c in citizens)
        phones = tuple(p for c in citizens for p in phone_of(c))
        codes = (code, "000000", "123456")
        passwords = (PASSWORD, "Another good passphrase 42")

        def live(attribute: str) -> st.SearchStrategy[str]:
            # Read when drawn: a successful call may have replaced the tokens.
            return st.just(attribute).map(lambda a: str(getattr(w, a)))

        request_ids = st.one_of(
            st.just("retry:1"),
            st.uuids().map(str),
            st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
        )
        w.values = Values(
            pool=(
                *ids,
                *(c.full_name for c in citizens),
                *(c.birth_date.isoformat() for c in citizens),
                *phones,
                "lan@example.vn",
                *codes,
                *passwords,
                w.session_token,
                w.refresh_token,
                w.session_id,
                share.token,
                share.share_id,
                named.approval_id,
                by_qr.qr_token,
                bank.party.id,
                "retry:1",
            ),
            hints={
                "personal_id": st.sampled_from(ids),
                "full_name": st.sampled_from(tuple(c.full_name for c in citizens)),
                "birth_date": st.sampled_from(tuple(c.birth_date.isoformat() for c in citizens)),
                "phone_number": st.sampled_from(phones),
                "email": st.sampled_from(("", "lan@example.vn")),
                "activation_code": st.sampled_from(codes),
                "one_time_code": st.sampled_from(codes),
                "password": st.sampled_from(passwords),
                "new_password": st.sampled_from(passwords),
                "device_name": st.sampled_from(("", "Phone", "Laptop")),
                "request_id": request_ids,
                "refresh_token": live("refresh_token"),
                "session_id": live("session_id"),
                "token": st.sampled_from((share.token, by_qr.qr_token)),
                "share_id": st.just(share.share_id),
                "approval_id": st.sampled_from((named.approval_id, by_qr.approval_id)),
                "verification_code": st.sampled_from((named.verification_code, "00")),
                "audience_party_id": st.sampled_from(("", bank.party.id)),
                "page_token": st.just(""),
            },
        )
        try:
            yield w
        finally:
            logging.getLogger().removeHandler(handler)


# --- one call, checked -------------------------------------------------------


def _error_info(
    trailers: tuple[tuple[str, str | bytes], ...],
) -> error_details_pb2.ErrorInfo | None:
    for key, value in trailers:
        if key != DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info
    return None


def _check_call(
    world: World, method: MethodDescriptor, payload: bytes, headers: tuple[Header, ...], source: str
) -> None:
    metadata = (*(h.resolve(world) for h in headers), ("x-forwarded-for", source))
    # Nothing but calls changes these tables: the last call's "after" is this one's "before".
    before = world.last or world.snapshot()
    del world.logs[:]
    path = f"/{method.containing_service.full_name}/{method.name}"
    code, _, trailers = world.raw(path, payload, metadata)
    after = world.last = world.snapshot()
    info = _error_info(trailers)
    world.seen.setdefault(method.name, set()).add(
        code.name if info is None else f"{code.name} {info.reason}"
    )
    if code == grpc.StatusCode.OK or (info is not None and info.reason not in SHALLOW_REASONS):
        world.reached.add(method.name)

    def explain() -> str:
        shown = payload if len(payload) <= 600 else payload[:600] + b"...(%d bytes)" % len(payload)
        server_log = "\n".join(
            f"{r.levelname} {r.name}: {r.getMessage()}" + (f"\n{r.exc_text}" if r.exc_text else "")
            for r in world.logs
        )
        return (
            f"{method.name} answered {code.name} (ErrorInfo: {info})\n"
            f"request bytes: {shown!r}\nmetadata: {metadata!r}\nserver log:\n{server_log}"
        )

    assert code not in FORBIDDEN, explain()
    if code == grpc.StatusCode.OK:
        # Whatever it changed, the seeded session may be gone: sign in again.
        world.sign_in()
        world.last = None
        return
    oversized = code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(payload) > MAX_MESSAGE_BYTES
    if not oversized:
        assert info is not None, "no ErrorInfo in grpc-status-details-bin: " + explain()
        assert info.domain == "eid.v1" and info.reason, explain()
    changed = before.changes(after, method.name, "" if info is None else info.reason)
    assert not changed, f"a refused call changed rows {changed}: " + explain()


def _fuzz(world: World, method: MethodDescriptor, examples: int) -> None:
    descriptor = method.input_type

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(payload=payloads(descriptor, world.values), headers=HEADERS, source=SOURCES)
    def one(payload: bytes, headers: tuple[Header, ...], source: str) -> None:
        _check_call(world, method, payload, headers, source)

    one()


def _reach(world: World, method: MethodDescriptor) -> None:
    """If no generated request got past decoding and the caller's credentials,
    plausible requests with valid credentials until one does (checked alike)."""

    @settings(
        max_examples=REACH_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        message=messages(method.input_type, world.values, False),
        headers=VALID_HEADERS,
        source=SOURCES,
    )
    def plausible(message: Message, headers: tuple[Header, ...], source: str) -> None:
        if method.name not in world.reached:
            _check_call(world, method, message.SerializeToString(), headers, source)

    if method.name not in world.reached:
        plausible()


def _fuzz_every_method(world: World, examples: int) -> None:
    for method in METHODS:
        _fuzz(world, method, examples)
        _reach(world, method)
    missing = {m.name for m in METHODS} - world.seen.keys()
    assert not missing, f"never called: {missing}"
    shallow = {m.name for m in METHODS} - world.reached
    assert not shallow, f"never past decoding and credentials: {shallow}"
    outcomes = {name: sorted(codes) for name, codes in sorted(world.seen.items())}
    print(f"{examples} examples per method; outcomes: {outcomes}")


def test_generated_requests_never_fail_inside_or_half_write(world: World) -> None:
    _fuzz_every_method(world, EXAMPLES_PER_METHOD)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not SOAK, reason="long: `make soak` runs it")
def test_thousands_of_generated_requests(world: World) -> None:
    _fuzz_every_method(world, SOAK_EXAMPLES_PER_METHOD)
