"""The standard ``grpc.health.v1.Health/Check`` call, without grpcio-health-checking.

The two messages are tiny (one field each), so they are encoded by hand rather
than adding a dependency to every client install.
"""

from __future__ import annotations

HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"

# grpc.health.v1.HealthCheckResponse.ServingStatus
_STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint in health response")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def encode_request(service: str = "") -> bytes:
    """HealthCheckRequest{service}: field 1, length-delimited; empty when ``service == ""``."""
    if not service:
        return b""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw


def decode_status(data: bytes) -> str:
    """The ServingStatus name in a HealthCheckResponse (field 1, varint)."""
    status, pos = 0, 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire_type = key >> 3, key & 0x7
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            if field == 1:
                status = value
        elif wire_type == 2:  # skip unknown length-delimited fields
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire_type in (1, 5):  # skip unknown fixed64/fixed32 fields
            pos += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire_type} in health response")
    return _STATUS_NAMES.get(status, str(status))
