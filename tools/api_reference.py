"""The Markdown API reference of protos/ (docs/api/reference.md): every
service, RPC (with the errors it can return, from ErrorReason's comments),
message, field, enum and value, with the protos' own comments. `make gen`
writes it; `make check-gen` fails when the committed copy differs.
Run: python -m tools.api_reference [OUTPUT]."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

from tools.proto_model import (
    ENUM_VALUE,
    EVERY_RPC,
    FILE_SERVICE,
    MESSAGE_FIELD,
    SERVICE_METHOD,
    STATUSES,
    Comments,
    Protos,
    descriptor_set,
)

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api" / "reference.md"


def _slug(name: str) -> str:
    # GitHub's anchor of a heading that is a type's name.
    return name.lower().replace(".", "")


def _prose(text: str) -> str:
    """Markdown-safe text: <...> outside code spans is not read as HTML."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return _prose("<br><br>".join(p for p in paragraphs if p)).replace("|", "\\|")


def _codes(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


class Reference:
    def __init__(self, protos: Protos) -> None:
        self.p = protos
        self._anchors: set[str] = set()

    def markdown(self) -> str:
        self._anchors.clear()
        return "\n".join(self._lines()).rstrip() + "\n"

    def _heading(self, name: str) -> str:
        if _slug(name) in self._anchors:
            raise ValueError(f"two headings would share the anchor #{_slug(name)}")
        self._anchors.add(_slug(name))
        return name

    def _link(self, type_name: str) -> str:
        local = self.p.messages.get(type_name) or self.p.enums.get(type_name)
        return f"[{local.name}](#{_slug(local.name)})" if local else f"`{type_name[1:]}`"

    def _type(self, field: d.FieldDescriptorProto) -> str:
        local = self.p.messages.get(field.type_name)
        if local and local.proto.options.map_entry:
            key, value = local.proto.field
            return f"map&lt;{self._type(key)}, {self._type(value)}&gt;"
        if field.type_name:
            kind = self._link(field.type_name)
        else:
            kind = d.FieldDescriptorProto.Type.Name(field.type).removeprefix("TYPE_").lower()
        repeated = field.label == d.FieldDescriptorProto.LABEL_REPEATED
        return f"repeated {kind}" if repeated else kind

    def _lines(self) -> Iterator[str]:
        yield "# eid API reference"
        yield ""
        yield "Generated from `protos/` by `tools/api_reference.py` (`make gen`); do not edit."
        for file in self.p.files:
            for si, service in enumerate(file.service):
                yield from self._service(file, service, Comments(file), si)
        yield from self._messages()
        yield from self._enums()
        yield from self._errors()

    def _service(
        self, file: d.FileDescriptorProto, service: d.ServiceDescriptorProto, c: Comments, si: int
    ) -> Iterator[str]:
        reasons = self.p.reasons()
        everywhere = [r.name for r in reasons if EVERY_RPC in r.rpcs]
        yield ""
        yield f"## {self._heading(service.name)} (`{file.package}`)"
        yield ""
        yield _prose(c(FILE_SERVICE, si))
        if everywhere:
            yield ""
            yield f"Besides the errors listed per RPC, any RPC may return {_codes(everywhere)}."
        for mi, method in enumerate(service.method):
            yield ""
            yield f"### {self._heading(method.name)}"
            yield ""
            yield _prose(c(FILE_SERVICE, si, SERVICE_METHOD, mi))
            yield ""
            yield f"Request: {self._link(method.input_type)}."
            yield f"Response: {self._link(method.output_type)}."
            errors = [r for r in reasons if method.name in r.rpcs]
            if errors:
                yield ""
                yield "Errors (status: reasons):"
                yield ""
                for status in STATUSES:
                    names = [r.name for r in errors if r.status == status]
                    if names:
                        yield f"- {status}: {_codes(names)}"

    def _messages(self) -> Iterator[str]:
        yield ""
        yield "## Messages"
        for m in self.p.messages.values():
            if m.proto.options.map_entry:
                continue
            yield ""
            yield f"### {self._heading(m.name)}"
            yield ""
            yield _prose(m.comments(*m.where)) or "(No comment.)"
            yield ""
            if not m.proto.field:
                yield "No fields."
                continue
            yield "| Field | Type | Number | Description |"
            yield "| --- | --- | --- | --- |"
            for fi, field in enumerate(m.proto.field):
                note = ""
                if field.HasField("oneof_index") and not field.proto3_optional:
                    note = f"One of `{m.proto.oneof_decl[field.oneof_index].name}`. "
                about = _cell(note + m.comments(*m.where, MESSAGE_FIELD, fi))
                yield f"| `{field.name}` | {self._type(field)} | {field.number} | {about} |"

    def _enums(self) -> Iterator[str]:
        yield ""
        yield "## Enums"
        for e in self.p.enums.values():
            if e is self.p.error_enum():
                continue
            yield ""
            yield f"### {self._heading(e.name)}"
            yield ""
            yield _prose(e.comments(*e.where))
            yield ""
            yield "| Value | Number | Description |"
            yield "| --- | --- | --- |"
            for vi, value in enumerate(e.proto.value):
                about = _cell(e.comments(*e.where, ENUM_VALUE, vi))
                yield f"| `{value.name}` | {value.number} | {about} |"

    def _errors(self) -> Iterator[str]:
        e = self.p.error_enum()
        if e is None:
            return
        yield ""
        yield f"## {self._heading(e.name)}"
        yield ""
        yield _prose(e.comments(*e.where))
        section = None
        for r in self.p.reasons():
            if r.section != section:
                section = r.section
                yield ""
                yield f"### {_prose(section.rstrip('.'))}"
                yield ""
                yield "| Reason | Number | Status | When | Returned by |"
                yield "| --- | --- | --- | --- | --- |"
            callers = ", ".join(r.rpcs)
            yield f"| `{r.name}` | {r.number} | {r.status} | {_cell(r.when)} | {callers} |"


def generate(proto_root: Path = ROOT / "protos") -> str:
    return Reference(Protos(descriptor_set(proto_root))).markdown()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUTPUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(generate(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
