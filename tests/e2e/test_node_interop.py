"""The Node/TypeScript client (clients/node, built by `make node-client`:
ts-proto stubs from protos/, @grpc/grpc-js) against a real `eid-server`, and
its retries and error decoding against a grpc-js server that fails on purpose."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.test_walkthrough import NAME

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
IN_CI = os.environ.get("CI") == "true"


def _built() -> Path:
    """clients/node/dist after `make node-client` (a no-op when current).
    Without node and npm, skip outside CI (with the reason) and fail in CI,
    where .ci/run installs them."""
    done = subprocess.run(
        ["make", "--no-print-directory", "node-client", *([] if IN_CI else ["NODE_OPTIONAL=1"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        pytest.fail(f"make node-client failed:\n{done.stdout}\n{done.stderr}")
    dist = NODE_DIR / "dist"
    if not (dist / ".built").exists():
        pytest.skip(f"Node client not built: {done.stdout.strip()}")
    return dist


def _node(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _new_party(d: Deployment, *options: str) -> str:
    return d.admin("party", "create", "--name", "Node Bank", *options).strip().splitlines()[-1]


def test_node_client_registers_activates_verifies_and_redeems(deployment: Deployment) -> None:
    dist = _built()
    d = deployment
    api_key = _new_party(d, "--modes", "password,qr_share")
    d.admin("demo-portrait", "--id", "001190791514", "--out", "face.f32")
    done = _node(
        dist / "test" / "interop.js",
        EID_TARGET=d.target,
        EID_API_KEY=api_key,
        EID_LIMITED_API_KEY=_new_party(
            d, "--modes", "demographic", "--rate-limit", "1", "--citizen-rate-limit", "1"
        ),
        EID_OUTBOX_FILE=str(d.workdir / "var" / "outbox.log"),
        EID_PORTRAIT_FILE=str(d.workdir / "face.f32"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "registered",
        "activated",
        "verified by password",
        "shared",
        "redeemed",
        "errors decoded",
        "node interop: ok",
    ]

    # The integrator's example, as its header says to run it.
    example = dist / "examples" / "verify-citizen.js"
    args = ("001190791514", "correct horse battery staple")
    ok = _node(example, *args, EID_TARGET=d.target, EID_API_KEY=api_key)
    assert (ok.returncode, ok.stdout) == (0, f"verified: {NAME} (ACCOUNT_LEVEL_1)\n"), ok.stderr
    refused = _node(example, *args, EID_TARGET=d.target, EID_API_KEY="eidk_bogus")
    assert refused.returncode == 2
    assert refused.stderr.startswith("eid refused: UNAUTHENTICATED API_KEY_INVALID: ")


def test_node_client_retries_and_decodes_errors() -> None:
    dist = _built()
    done = subprocess.run(
        [
            "node",
            "--test",
            *(str(dist / "test" / t) for t in ("client.test.js", "hostile.test.js")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
    # Every test ran: the client's 12 and the 15 against a hostile server or
    # proxy (the trailers Python's test_client_errors sends, and cancellation).
    assert "# pass 27" in done.stdout
