"""The ErrorReason enum of the protos and the reasons the server raises agree
both ways: a reason added to the server without a proto entry (or an entry
left behind when a reason goes) fails here, and each entry's comment names
the status the server really sends with it."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import eid_client
import eid_service
from eid.errors.v1 import error_reason_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "protos" / "eid" / "errors" / "v1" / "error_reason.proto"
SERVICE = Path(eid_service.__file__).parent
OFFLINE = Path(eid_client.__file__).parent / "offline.py"

# Reasons look like this; one-word ones are found only in reason positions.
SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
WORD = re.compile(r"[A-Z][A-Z0-9_]+")

# Raised by code no RPC reaches (eid-server's operator commands) or written
# to audit entries only: never a google.rpc.ErrorInfo, so not in the enum.
NOT_OVER_GRPC = {
    # eid-server registry mark-deceased
    "CITIZEN_NOT_FOUND",
    "DEATH_DATE_IN_FUTURE",
    "DEATH_DATE_BEFORE_BIRTH",
    # eid-server party create / set-limits / rotate-key / webhook
    "PARTY_NAME_INVALID",
    "PARTY_CONTACT_INVALID",
    "MODES_EMPTY",
    "MODE_UNKNOWN",
    "SCOPES_EMPTY",
    "RATE_LIMIT_INVALID",
    "CITIZEN_RATE_LIMIT_INVALID",
    "KEY_OVERLAP_INVALID",
    "KEY_RECENTLY_ROTATED",
    "PARTY_NOT_FOUND",
    # eid-server keys revoke
    "SIGNING_KEY_NOT_FOUND",
    # eid-server officer create / set-roles
    "OFFICER_NAME_INVALID",
    "ROLES_EMPTY",
    "ROLE_UNKNOWN",
    # audit entries of `verified: false` answers and of RequestOtp
    "WRONG_PASSWORD",
    "DEMOGRAPHIC_MISMATCH",
    "NO_ACTIVE_ACCOUNT_WITH_PHONE",
    "BIOMETRIC_MISMATCH",
    "NO_LEVEL_2_TEMPLATES",
}
# Declared for the SDKs' offline verification, which refuses with them.
SDK_ONLY = {"SHARE_ISSUER_MISMATCH", "SHARE_ONLINE_ONLY"}

# The status each kind of domain error is sent with (api/errors.py).
KIND_STATUS = {
    "InvalidInput": "INVALID_ARGUMENT",
    "NotFound": "NOT_FOUND",
    "AlreadyExists": "ALREADY_EXISTS",
    "PreconditionFailed": "FAILED_PRECONDITION",
    "Unauthenticated": "UNAUTHENTICATED",
    "PermissionDenied": "PERMISSION_DENIED",
    "TooManyAttempts": "RESOURCE_EXHAUSTED",
    "TooLarge": "RESOURCE_EXHAUSTED",
    "DeadlineExceeded": "DEADLINE_EXCEEDED",
    "Unavailable": "UNAVAILABLE",
    "Aborted": "ABORTED",
}
# Calls whose second positional argument is a field violation's reason.
VIOLATION_CALLS = {"of", "FieldViolation", "add"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _server_modules() -> list[Path]:
    # Operator commands' metavars (PARTY_ID, KEY_ID) are not reasons; the
    # reasons those commands raise live in use_cases and domain, scanned here.
    return [
        p
        for p in sorted(SERVICE.rglob("*.py"))
        if "migrations" not in p.parts and not p.name.startswith("cli")
    ]


def _scan(paths: list[Path]) -> tuple[set[str], dict[str, set[str]]]:
    """Every reason-looking literal, and the status of each one raised
    through a domain error whose kind the call names."""
    found: set[str] = set()
    statuses: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = _text(node)
            # Environment variable names (ours and OpenTelemetry's) are not reasons.
            if text and SNAKE.fullmatch(text) and not text.startswith(("EID_", "OTEL_")):
                found.add(text)
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            keyword = next((_text(k.value) for k in node.keywords if k.arg == "reason"), None)
            if keyword and WORD.fullmatch(keyword):
                found.add(keyword)
                if name in KIND_STATUS:
                    statuses[keyword].add(KIND_STATUS[name])
            second = _text(node.args[1]) if len(node.args) > 1 else None
            if second and name in VIOLATION_CALLS | {"rich_status"} and WORD.fullmatch(second):
                found.add(second)
                if name in VIOLATION_CALLS:
                    statuses[second].add("INVALID_ARGUMENT")
    return found, statuses


def _enum_names() -> set[str]:
    return set(error_reason_pb2.ErrorReason.keys()) - {"ERROR_REASON_UNSPECIFIED"}


def test_every_reason_the_server_raises_is_declared() -> None:
    raised, _ = _scan(_server_modules())
    missing = raised - NOT_OVER_GRPC - _enum_names()
    assert not missing, (
        f"reasons raised by the server but missing from ErrorReason in {PROTO.name}: "
        f"{sorted(missing)} (add them with their status, or to NOT_OVER_GRPC here "
        "if no RPC can return them)"
    )


def test_every_declared_reason_is_raised() -> None:
    raised, _ = _scan(_server_modules())
    offline, _ = _scan([OFFLINE])
    assert offline >= SDK_ONLY, "the SDK-only reasons are the offline verifier's"
    unused = _enum_names() - raised - SDK_ONLY
    assert not unused, f"ErrorReason values the server never raises: {sorted(unused)}"
    assert not NOT_OVER_GRPC & _enum_names(), "a reason is both declared and not over gRPC"


def _declared_statuses() -> dict[str, str]:
    """Each value's status: the first word of its comment in the proto."""
    text = PROTO.read_text(encoding="utf-8")
    pattern = re.compile(r"// ([A-Z_]+): (?:[^\n]*\n\s*//[^\n]*)*[^\n]*\n\s*(\w+) = \d+;")
    return {value: status for status, value in pattern.findall(text)}


def test_each_reason_is_commented_with_its_status() -> None:
    declared = _declared_statuses()
    assert set(declared) == _enum_names(), "every value's comment starts with 'STATUS: '"
    _, statuses = _scan(_server_modules())
    for reason, sent in sorted(statuses.items()):
        if reason in declared:
            assert sent == {declared[reason]}, f"{reason} is sent with {sorted(sent)}"
    # Not raised through a named kind, so checked here by hand.
    assert declared["INTERNAL"] == "INTERNAL"
    assert declared["PARTY_RATE_LIMITED"] == "RESOURCE_EXHAUSTED"
    assert declared["CONCURRENT_REQUEST"] == "ABORTED"


def test_the_scan_finds_reasons_in_every_shape_the_server_uses() -> None:
    """Guards the scanner itself: keyword, violation, dict-table, constant
    and interceptor reasons are all seen (were one shape missed, a new
    reason of that shape would slip past the tests above)."""
    raised, statuses = _scan(_server_modules())
    assert {
        "SHARE_ALREADY_REDEEMED",  # PreconditionFailed(reason=...)
        "PERSONAL_ID_MALFORMED",  # InvalidInput.of(field, reason, ...)
        "DEMOGRAPHIC_CLAIM_EMPTY",  # FieldViolation(field, reason, ...)
        "SHARE_PAYLOAD_TOO_LARGE",  # a key of a reason table
        "PARTY_CITIZEN_RATE_LIMITED",  # a module constant
        "INTERNAL",  # rich_status(code, reason, ...)
        "REQUEST_UNDECODABLE",
    } <= raised
    assert statuses["SHARE_ALREADY_REDEEMED"] == {"FAILED_PRECONDITION"}
    assert statuses["PERSONAL_ID_MALFORMED"] == {"INVALID_ARGUMENT"}
