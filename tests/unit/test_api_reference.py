"""The generated API reference (docs/api/reference.md): it is what the protos
make of it, it documents every part of the contract, each RPC lists the
errors ErrorReason says it returns, and the generator keeps Markdown intact
and refuses an ErrorReason comment it cannot read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.api_reference import OUTPUT, ROOT, Reference, generate
from tools.proto_model import Protos, descriptor_set


@pytest.fixture(scope="module")
def reference() -> str:
    return generate()


def _sections(markdown: str) -> dict[str, str]:
    """Each '### Name' section's text, by name."""
    parts = re.split(r"^### (.+)$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_committed_reference_is_what_the_protos_make(reference: str) -> None:
    assert OUTPUT.read_text(encoding="utf-8") == reference, "run 'make gen' and commit"


def test_every_rpc_message_field_enum_and_value_is_documented(reference: str) -> None:
    protos = Protos(descriptor_set(ROOT / "protos"))
    sections = _sections(reference)
    for rpc in protos.rpcs:
        assert rpc in sections
    for message in protos.messages.values():
        for field in message.proto.field:
            row = re.search(
                rf"^\| `{field.name}` \| .* \| {field.number} \| (.+) \|$",
                sections[message.name],
                re.M,
            )
            assert row and row[1].strip(), f"{message.name}.{field.name} undocumented"
    for enum in protos.enums.values():
        if enum.name == "ErrorReason":
            continue
        for value in enum.proto.value:
            row = re.search(
                rf"^\| `{value.name}` \| {value.number} \| (.+) \|$", sections[enum.name], re.M
            )
            assert row and row[1].strip(), f"{value.name} undocumented"
    reasons = [v.name for v in protos.enums[".eid.errors.v1.ErrorReason"].proto.value[1:]]
    for reason in reasons:
        assert re.search(rf"^\| `{reason}` \| \d+ \| [A-Z_]+ \| .+ \| .+ \|$", reference, re.M)


def test_each_rpc_lists_the_errors_it_can_return(reference: str) -> None:
    sections = _sections(reference)
    assert "- FAILED_PRECONDITION: `REGISTRY_MISMATCH`, `AGE_BELOW_MINIMUM`" in sections["Register"]
    assert "`SHARE_ALREADY_REDEEMED`" in sections["Verify"]
    assert "`SHARE_ALREADY_REDEEMED`" not in sections["Register"]
    # "every RPC with a request_id" reaches the RPCs whose request has one.
    assert "`REQUEST_ID_REUSED`" in sections["SetStatusWebhook"]
    assert "`REQUEST_ID_REUSED`" not in sections["GetStatusWebhook"]
    # Errors of every RPC are said once, not under each RPC.
    assert "Errors" not in sections["GetVerificationKeys"]
    assert "any RPC may return `INTERNAL`, `REQUEST_UNDECODABLE`, `STORE_BUSY`" in reference


def _write(root: Path, reason_comment: str) -> Path:
    (root / "t").mkdir()
    (root / "t" / "t.proto").write_text(
        f"""syntax = "proto3";
package t;
// The service.
service S {{
  // Answers <x> | y.
  rpc Call(Outer) returns (Outer);
}}
// Outer, with `a <b>` code.
message Outer {{
  // Inner.
  message Inner {{
    // A value.
    int32 v = 1;
  }}
  // Either.
  oneof which {{
    // The inner one.
    Inner inner = 1;
    // A | pipe.
    string text = 2;
  }}
  // A map.
  map<string, Inner> by_name = 3;
}}
// Reasons.
enum ErrorReason {{
  // None.
  ERROR_REASON_UNSPECIFIED = 0;

  // Section one.

  {reason_comment}
  SOMETHING_WRONG = 1;
}}
""",
        encoding="utf-8",
    )
    return root


def test_the_generator_keeps_markdown_intact(tmp_path: Path) -> None:
    comment = "// INVALID_ARGUMENT: when <it> breaks.\n  // Returned by: Call."
    protos = Protos(descriptor_set(_write(tmp_path, comment)))
    text = Reference(protos).markdown()
    sections = _sections(text)
    assert "Answers &lt;x&gt; | y." in sections["Call"]
    assert "- INVALID_ARGUMENT: `SOMETHING_WRONG`" in sections["Call"]
    assert "Outer, with `a <b>` code." in sections["Outer"]
    assert "| `inner` | [Outer.Inner](#outerinner) | 1 | One of `which`. The inner one. |" in text
    assert "| `text` | string | 2 | One of `which`. A \\| pipe. |" in text
    assert "| `by_name` | map&lt;string, [Outer.Inner](#outerinner)&gt; | 3 | A map. |" in text
    assert "### Outer.Inner" in text
    assert "ByNameEntry" not in text
    assert "### Section one" in text
    assert "| `SOMETHING_WRONG` | 1 | INVALID_ARGUMENT | when &lt;it&gt; breaks. | Call |" in text


@pytest.mark.parametrize(
    ("comment", "refusal"),
    [
        ("// Something broke.\n  // Returned by: Call.", "the comment is not"),
        ("// NOT_A_STATUS: it broke.\n  // Returned by: Call.", "the comment is not"),
        ("// INTERNAL: it broke.", "the comment is not"),
        ("// INTERNAL: it broke.\n  // Returned by: Cal.", "names no RPC: \\['Cal'\\]"),
    ],
)
def test_an_error_reason_comment_it_cannot_read_is_refused(
    tmp_path: Path, comment: str, refusal: str
) -> None:
    protos = Protos(descriptor_set(_write(tmp_path, comment)))
    with pytest.raises(ValueError, match=refusal):
        protos.reasons()
