"""The bench's bare durable write on PostgreSQL (`--postgres`), as a real process:
each signed call commits its single-use row and its audit row before the answer,
concurrent calls each get their own row, and a forged signature writes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
import pytest

from bench.durable_write_server import METHOD
from bench.stack import ProcessSet, start_durable_write_server
from bench.workloads import Signer


def _counts(dsn: str) -> tuple[int, int, int]:
    """(grants, grants used, audit rows)."""
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT (SELECT count(*) FROM grants), (SELECT count(used_at) FROM grants),"
            " (SELECT count(*) FROM audit)"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_each_call_commits_its_rows_and_a_forged_one_writes_nothing(
    tmp_path: Path, empty_database_url: str
) -> None:
    dsn = empty_database_url
    signer = Signer()
    with ProcessSet() as procs:
        address = start_durable_write_server(
            procs,
            tmp_path,
            public_key=signer.public_key_hex,
            probe=signer.signed_requests(b"probe", 1)[0],
            postgres=dsn,
            threads=2,
        )
        assert _counts(dsn) == (1, 1, 1)  # the probe, committed before it answered

        with grpc.insecure_channel(address) as channel:
            redeem = channel.unary_unary(METHOD, None, None)  # raw bytes both ways
            requests = signer.signed_requests(b"call", 16)
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda r: redeem(r, timeout=30), requests))
            assert len({bytes(a) for a in answers}) == 16
            assert all(len(a) == 16 for a in answers)
            assert _counts(dsn) == (17, 17, 17)

            forged = requests[0][:-1] + bytes([requests[0][-1] ^ 1])
            with pytest.raises(grpc.RpcError) as refused:
                redeem(forged, timeout=30)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert _counts(dsn) == (17, 17, 17)
