"""The bare durable write: the second ceiling the bench measures eid against.

One grpc.aio method on raw bytes ``message || 64-byte Ed25519 signature``: verify
the signature, then on a writer thread with its own sqlite3 connection (WAL,
synchronous=FULL) insert a single-use row, consume it with a conditional UPDATE,
append an audit row and COMMIT; answer after the commit. ``--group-commit``: the
writer runs every call queued since its last commit in a SAVEPOINT each, commits
once, then answers them all. ``--postgres DSN``: the same write on PostgreSQL
(synchronous_commit on), a transaction per call on one of ``--threads`` writer
threads with a connection each, as eid runs its writes there.

    python bench/durable_write_server.py --port 50101 --public-key HEX --dir /tmp/dw
    python bench/durable_write_server.py --port 50102 --public-key HEX \
        --postgres postgresql://postgres@127.0.0.1:5432/scratch --threads 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from grpc import aio

SERVICE = "bench.DurableWrite"
METHOD = f"/{SERVICE}/Redeem"
SIGNATURE_BYTES = 64
SETUP = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE grants (id BLOB PRIMARY KEY, issued_at REAL NOT NULL, used_at REAL);
CREATE TABLE audit (seq INTEGER PRIMARY KEY, grant_id BLOB NOT NULL, at REAL NOT NULL);
"""
POSTGRES_SETUP = (
    "CREATE TABLE grants (id bytea PRIMARY KEY, issued_at double precision NOT NULL,"
    " used_at double precision)",
    "CREATE TABLE audit (seq bigserial PRIMARY KEY, grant_id bytea NOT NULL,"
    " at double precision NOT NULL)",
)
Job = asyncio.Future[bytes]


def redeem(db: sqlite3.Connection) -> bytes:
    """One call's write, inside the transaction the writer opened."""
    grant_id, now = os.urandom(16), time.time()
    db.execute("INSERT INTO grants (id, issued_at) VALUES (?, ?)", (grant_id, now))
    used = db.execute(
        "UPDATE grants SET used_at = ? WHERE id = ? AND used_at IS NULL", (now, grant_id)
    )
    if used.rowcount != 1:
        raise RuntimeError("the single-use row was already consumed")
    db.execute("INSERT INTO audit (grant_id, at) VALUES (?, ?)", (grant_id, now))
    return grant_id


def in_savepoint(db: sqlite3.Connection) -> bytes | Exception:
    db.execute("SAVEPOINT call")  # group commit: a failing call is rolled back alone
    try:
        return redeem(db)
    except Exception as e:
        db.execute("ROLLBACK TO call")
        return e
    finally:
        db.execute("RELEASE call")


def settle(future: Job, result: bytes | Exception) -> None:
    if future.done():  # the caller gave up (deadline, cancellation)
        pass
    elif isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


class Writer:
    """One thread, one connection: a commit per call, or per batch with group commit."""

    def __init__(self, path: Path, *, group_commit: bool) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(SETUP)
        self._group_commit = group_commit
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    async def write(self) -> bytes:
        future: Job = asyncio.get_running_loop().create_future()
        self._queue.put(future)
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            # This thread alone takes from the queue: not empty means get_nowait succeeds.
            while self._group_commit and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            batch = [job for job in jobs if job is not None]
            self._commit(batch)  # an empty batch (stopping) commits nothing
            if len(batch) < len(jobs):  # close() queued the stop mark
                self._db.close()
                return

    def _commit(self, batch: list[Job]) -> None:
        one = in_savepoint if self._group_commit else redeem
        try:
            self._db.execute("BEGIN IMMEDIATE")
            results: list[bytes | Exception] = [one(self._db) for _ in batch]
            self._db.execute("COMMIT")
        except Exception as e:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            results = [e] * len(batch)
        for future, result in zip(batch, results, strict=True):
            future.get_loop().call_soon_threadsafe(settle, future, result)


class PostgresWriter:
    """``threads`` threads, a psycopg connection each: a transaction and its
    commit per call."""

    def __init__(self, dsn: str, *, threads: int) -> None:
        self._dsn = dsn
        with psycopg.connect(dsn, autocommit=True) as setup:
            for statement in POSTGRES_SETUP:
                setup.execute(statement)
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="writer")

    async def write(self) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._redeem)

    def _redeem(self) -> bytes:
        db = getattr(self._local, "db", None)
        if db is None or db.broken:  # first call on this thread, or the server ended it
            db = self._local.db = psycopg.connect(self._dsn)
            self._connections.append(db)
        grant_id, now = os.urandom(16), time.time()
        with db.transaction():
            db.execute("INSERT INTO grants (id, issued_at) VALUES (%s, %s)", (grant_id, now))
            used = db.execute(
                "UPDATE grants SET used_at = %s WHERE id = %s AND used_at IS NULL",
                (now, grant_id),
            )
            if used.rowcount != 1:
                raise RuntimeError("the single-use row was already consumed")
            db.execute("INSERT INTO audit (grant_id, at) VALUES (%s, %s)", (grant_id, now))
        return grant_id

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for db in self._connections:
            db.close()


async def serve(
    host: str, port: int, public_key: Ed25519PublicKey, writer: Writer | PostgresWriter
) -> None:
    async def handle(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        try:
            public_key.verify(request[-SIGNATURE_BYTES:], request[:-SIGNATURE_BYTES])
        except InvalidSignature:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad signature")
        return await writer.write()

    # Alone on its port: gRPC would otherwise share it (SO_REUSEPORT) with an
    # eid that listens there, and split that eid's connections with it.
    server = aio.server(options=[("grpc.so_reuseport", 0)])
    method = grpc.unary_unary_rpc_method_handler(handle)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Redeem": method})]
    )
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"durable write server: cannot listen on {host}:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bare durable write server for the eid bench.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-key", required=True, help="raw Ed25519 public key in hex")
    parser.add_argument("--dir", type=Path, help="an empty folder for the SQLite database")
    parser.add_argument("--group-commit", action="store_true", help="SQLite: one commit per batch")
    parser.add_argument(
        "--postgres", metavar="DSN", help="write to this (empty) PostgreSQL database instead"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="PostgreSQL writer threads (default 4)"
    )
    args = parser.parse_args(argv)
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(args.public_key))
    writer: Writer | PostgresWriter
    if args.postgres:
        writer = PostgresWriter(args.postgres, threads=args.threads)
    elif args.dir is None:
        parser.error("--dir or --postgres is required")
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        writer = Writer(args.dir / "durable-write.db", group_commit=args.group_commit)
    try:
        asyncio.run(serve(args.host, args.port, public_key, writer))
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
