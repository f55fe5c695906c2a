"""The protos as protoc reads them: descriptors with their comments
(SourceCodeInfo), indexed by full name, and the ErrorReason values read from
their comments, which follow a convention: a comment starts with the gRPC
status ("INVALID_ARGUMENT: ...") and ends with "Returned by: Register,
Verify." (or "every RPC", "every RPC with a request_id", "no RPC")."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2 as d
from grpc_tools import protoc

ERROR_ENUM = "ErrorReason"
# Canonical order of google.rpc.Code.
STATUSES = (
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
EVERY_RPC = "every RPC"
WITH_REQUEST_ID = "every RPC with a request_id"
NO_RPC = "no RPC"
# Paths inside descriptors (descriptor.proto's field numbers), for comments.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE = 2
SERVICE_METHOD = 2
Where = tuple[int, ...]
_REASON = re.compile(r"^([A-Z_]+): (.*?)\s*Returned by: (.+?)\.?$", re.S)


def descriptor_set(proto_root: Path) -> d.FileDescriptorSet:
    """protoc's descriptors of every .proto under proto_root, with comments."""
    files = sorted(str(p) for p in proto_root.rglob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "descriptors.pb"
        args = [f"-I{proto_root}", f"-I{well_known}", "--include_source_info"]
        if protoc.main(["protoc", *args, f"--descriptor_set_out={out}", *files]) != 0:
            raise RuntimeError(f"protoc failed on {proto_root}")
        return d.FileDescriptorSet.FromString(out.read_bytes())


def _clean(raw: str) -> str:
    # protoc keeps the space after "//"; deeper indentation (lists) stays.
    return "\n".join(line.removeprefix(" ") for line in raw.rstrip().split("\n")).strip()


class Comments:
    """The comments of one file, by descriptor path."""

    def __init__(self, file: d.FileDescriptorProto) -> None:
        self._at = {tuple(loc.path): loc for loc in file.source_code_info.location}

    def __call__(self, *path: int) -> str:
        loc = self._at.get(path)
        return _clean(loc.leading_comments or loc.trailing_comments) if loc else ""

    def section(self, *path: int) -> str:
        """The last comment standing apart above `path` (a section title)."""
        loc = self._at.get(path)
        apart = loc.leading_detached_comments if loc else []
        return _clean(apart[-1]) if apart else ""


@dataclass(frozen=True)
class Message:
    proto: d.DescriptorProto
    name: str  # relative to the package: "Outer.Inner"
    comments: Comments
    where: Where


@dataclass(frozen=True)
class Enum:
    proto: d.EnumDescriptorProto
    name: str
    comments: Comments
    where: Where


@dataclass(frozen=True)
class Reason:
    """One ErrorReason value as its comment describes it."""

    name: str
    number: int
    status: str
    when: str
    rpcs: list[str]
    section: str


class Protos:
    """Every message and enum by full name (".eid.v1.Account"), in
    declaration order, files sorted by name."""

    def __init__(self, files: d.FileDescriptorSet) -> None:
        self.files = sorted(files.file, key=lambda f: f.name)
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        for file in self.files:
            c = Comments(file)
            for i, message in enumerate(file.message_type):
                self._message(f".{file.package}", message, c, (FILE_MESSAGE, i), "")
            for i, enum in enumerate(file.enum_type):
                full = f".{file.package}.{enum.name}"
                self.enums[full] = Enum(enum, enum.name, c, (FILE_ENUM, i))
        self.rpcs = [m.name for f in self.files for s in f.service for m in s.method]

    def _message(
        self, scope: str, message: d.DescriptorProto, c: Comments, where: Where, outer: str
    ) -> None:
        name, full = f"{outer}{message.name}", f"{scope}.{message.name}"
        self.messages[full] = Message(message, name, c, where)
        for i, nested in enumerate(message.nested_type):
            self._message(full, nested, c, (*where, MESSAGE_NESTED, i), f"{name}.")
        for i, enum in enumerate(message.enum_type):
            at = (*where, MESSAGE_ENUM, i)
            self.enums[f"{full}.{enum.name}"] = Enum(enum, f"{name}.{enum.name}", c, at)

    def error_enum(self) -> Enum | None:
        return next((e for e in self.enums.values() if e.proto.name == ERROR_ENUM), None)

    def reasons(self) -> list[Reason]:
        """Every ErrorReason value but the zero one, in declaration order."""
        enum = self.error_enum()
        if enum is None:
            return []
        rows, section = [], ""
        for i, value in enumerate(enum.proto.value[1:], start=1):
            section = enum.comments.section(*enum.where, ENUM_VALUE, i) or section
            match = _REASON.match(enum.comments(*enum.where, ENUM_VALUE, i))
            if not match or match[1] not in STATUSES:
                shape = "'STATUS: when ... Returned by: ...'"
                raise ValueError(f"{value.name}: the comment is not {shape}")
            rpcs = self._rpcs(match[3])
            rows.append(Reason(value.name, value.number, match[1], match[2], rpcs, section))
        return rows

    def _rpcs(self, text: str) -> list[str]:
        text = " ".join(text.split())
        if text in (EVERY_RPC, NO_RPC):
            return [text]
        if text == WITH_REQUEST_ID:
            return [name for name, fields in self._requests() if "request_id" in fields]
        names = [n.strip() for n in text.split(",")]
        unknown = [n for n in names if n not in self.rpcs]
        if unknown:
            raise ValueError(f"'Returned by' names no RPC: {unknown}")
        return names

    def _requests(self) -> Iterator[tuple[str, set[str]]]:
        """Each RPC's name and its request's field names."""
        for file in self.files:
            for service in file.service:
                for method in service.method:
                    request = self.messages.get(method.input_type)
                    yield method.name, {f.name for f in request.proto.field} if request else set()
