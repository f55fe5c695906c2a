"""What one bench run does: how many calls of each workload, per round and to warm up."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from eid_service.store.uow import POSTGRES_WRITERS

# Every workload, in the order a round measures them and the report lists them.
WORKLOAD_KEYS = (
    "echo",
    "durable_write",
    "durable_write_group",
    "durable_write_postgres",  # with --postgres only
    "share_via_qr",
    "verify_token",
    "verify_token_2_workers",
    "verify_password",
    "verify_otp",
    "verify_demographic",
    "register",
    "argon2id",
    "ed25519",
    "offline_verify",
)
# Verify(token) calls a round (the other workloads scale from it). At 300 a
# Verify round lasted ~0.15 s here: its p99 was its 3rd slowest call, and its
# first and last calls ran with fewer than `--concurrency` in flight.
DEFAULT_CALLS = 1500
# Writer threads of the bare durable write on PostgreSQL: as many as eid's
# (store/uow.py POSTGRES_WRITERS), so that both write alike.
POSTGRES_DURABLE_WRITE_THREADS = POSTGRES_WRITERS


@dataclass(frozen=True)
class Plan:
    rounds: int
    concurrency: int
    workers: int
    scaled_workers: int  # the second eid, for verify_qr_2_workers_vs_1
    channels: int
    scaled_channels: int
    quick: bool
    postgres: str | None
    calls: dict[str, int]
    warmup: dict[str, int]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        n = args.calls if args.calls is not None else (30 if args.quick else DEFAULT_CALLS)
        calls = {
            "echo": 10 * n,
            "durable_write": 2 * n,
            "durable_write_group": 2 * n,
            "durable_write_postgres": 2 * n,
            "share_via_qr": n,  # and Verify(token) redeems the tokens it issued
            "verify_token_2_workers": n,
            "verify_password": max(4, n // 4),
            # Each one-time code needs its own citizen (codes bind to (party, citizen)),
            # enrolled once for the whole run. As many calls as the other Verify rows:
            # with n/4 at 32 in flight, a round was mostly ramp-up and drain (0.23x
            # the echo where the same server did 0.28x over n calls).
            "verify_otp": n,
            "verify_demographic": n,
            "register": n,
            "argon2id": max(4, n // 4),
            "ed25519": 20 * n,
            "offline_verify": 20 * n,
        }
        c = args.concurrency
        # Warm-up: connections, server caches and code paths, before the first round.
        warmup = {
            "echo": 4 * c,
            "durable_write": 2 * c,
            "durable_write_group": 2 * c,
            "durable_write_postgres": 2 * c,
            "share_via_qr": min(c, n),
            "verify_token_2_workers": min(c, n),
            "verify_password": 2 if args.quick else 8,
            "verify_otp": 4,
            "verify_demographic": min(c, n),
            "register": min(c, n),
            "argon2id": os.cpu_count() or 1,
            "ed25519": 200,
            "offline_verify": 200,
        }
        scaled = 2 * args.workers
        return cls(
            rounds=args.rounds,
            concurrency=c,
            workers=args.workers,
            scaled_workers=scaled,
            channels=args.channels or 4 * args.workers,
            scaled_channels=args.channels or 4 * scaled,
            quick=args.quick,
            postgres=args.postgres,
            calls=calls,
            warmup=warmup,
        )

    @property
    def otp_citizens(self) -> int:
        """Citizens enrolled for Verify by one-time code: one per call of a round."""
        return max(self.calls["verify_otp"], self.warmup["verify_otp"])

    @property
    def synthetic_citizens(self) -> int:
        """Registrable citizens to load: one per Register call of the whole run,
        and the one-time-code citizens (the last ones)."""
        return self.warmup["register"] + self.rounds * self.calls["register"] + self.otp_citizens

    def labels(self) -> dict[str, str]:
        def eid(call: str, workers: int) -> str:
            return f"eid {call}" + (f", {workers} workers" if workers > 1 else "")

        return {
            "echo": "bare gRPC echo",
            "durable_write": "bare durable write (commit per call)",
            "durable_write_group": "bare durable write (group commit)",
            "durable_write_postgres": (
                f"bare durable write on PostgreSQL ({POSTGRES_DURABLE_WRITE_THREADS} threads)"
            ),
            "share_via_qr": eid("ShareViaQR", self.workers),
            "verify_token": eid("Verify (token)", self.workers),
            "verify_token_2_workers": eid("Verify (token)", self.scaled_workers),
            "verify_password": eid("Verify (password)", self.workers),
            "verify_otp": eid("Verify (one-time code)", self.workers),
            "verify_demographic": eid("Verify (demographic)", self.workers),
            "register": eid("Register", self.workers),
            "argon2id": f"bare Argon2id verify ({os.cpu_count() or 1} threads)",
            "ed25519": "bare Ed25519 verify (1 thread)",
            "offline_verify": "SDK verify_offline (1 thread)",
        }
