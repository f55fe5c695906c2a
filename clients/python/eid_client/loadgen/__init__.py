"""Load generator for eid capacity tests: :func:`run_load` and the ``eid-loadgen`` CLI.

:func:`run_load` makes calls at a fixed concurrency or a fixed rate, for a
number of calls or a time, and records the latency of each successful call::

    async with AsyncEidClient(target, api_key=key) as eid:
        result = await run_load(
            lambda i: eid.verify_password(personal_id=pid, password=pw),
            total=1000,
            concurrency=32,
        )
    print(result.rps, result.p50_ms, result.p99_ms)

The same function drives ``make bench`` (next to a bare gRPC echo server), so
figures from the CLI and from the bench are measured the same way. The CLI
(:mod:`.cli`) prepares each workload's data (:mod:`.prepare`), shares the run
among processes (:mod:`.plan`, :mod:`.processes`), and reports it as tables,
JSON (:mod:`.report`) and a chart (:mod:`.chart`).
"""

from eid_client.loadgen.cli import build_parser, main
from eid_client.loadgen.processes import channel_options
from eid_client.loadgen.result import LoadResult, NotVerifiedError, error_kind, percentile
from eid_client.loadgen.runner import run_load

__all__ = [
    "LoadResult",
    "NotVerifiedError",
    "build_parser",
    "channel_options",
    "error_kind",
    "main",
    "percentile",
    "run_load",
]
