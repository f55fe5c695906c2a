"""A bare gRPC echo server: the baseline the bench measures eid against.

One grpc.aio process, one generic unary method ``/bench.Echo/Echo`` that returns
the request bytes untouched (no protobuf, no interceptors, no database), so its
throughput is what the gRPC stack itself costs on this machine.

    python bench/echo_server.py --port 50100
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
from grpc import aio

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(host: str, port: int) -> None:
    # Alone on its port: gRPC would otherwise share it (SO_REUSEPORT) with an
    # eid that listens there, and split that eid's connections with it.
    server = aio.server(options=[("grpc.so_reuseport", 0)])
    # No (de)serializers: the handler sees and returns raw bytes.
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"echo server: cannot listen on {host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo server listening on {host}:{port}", flush=True)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bare gRPC echo server for the eid bench.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
