"""One eid-server per port. gRPC sets SO_REUSEPORT on its listeners, which
lets our workers share a port, but would also let a second instance start
quietly on it and take most new connections.

So before any worker starts, the serving process (1) locks a file named
after the port for as long as it runs, so two instances started together
cannot both get past this; (2) binds the address once without SO_REUSEPORT,
which fails while anything at all listens there (an instance from another
directory or user, another program)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eid_service.settings_values import split_listen


class PortTaken(RuntimeError):
    """The listen address is served already, or cannot be bound at all."""


@dataclass
class PortClaim:
    lock_fd: int | None = None
    path: Path | None = None

    def release(self) -> None:
        """After the workers have stopped: the port is free for the next one."""
        if self.lock_fd is not None:
            if self.path is not None:
                self.path.unlink(missing_ok=True)  # while still held: no litter in /tmp
            os.close(self.lock_fd)  # closing drops the lock
            self.lock_fd = None


def lock_path(port: int, directory: Path | None = None) -> Path:
    return (directory or Path(tempfile.gettempdir())) / f"eid-server-port-{port}.lock"


def claim_port(listen: str, lock_dir: Path | None = None) -> PortClaim:
    """Raises PortTaken, naming the port, if `listen` is served already."""
    address = split_listen(listen)
    if address is None or address[1] == 0:
        return PortClaim()  # a Unix socket or an ephemeral port: nobody else's
    host, port = address
    path = lock_path(port, lock_dir)
    fd = _lock(path, port)
    claim = PortClaim(fd, path if fd is not None else None)
    try:
        _probe(host, port)
    except BaseException:
        claim.release()
        raise
    return claim


def _lock(path: Path, port: int) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None  # another user's file: the bind probe still tells
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        raise PortTaken(
            f"port {port} is already served by another eid-server (pid {holder or '?'};"
            f" lock {path}): stop it, or set EID_LISTEN to another port"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _probe(host: str, port: int) -> None:
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as bad:
        raise PortTaken(f"cannot serve on {host}:{port}: {bad.strerror}") from None
    for family, kind, proto, _, sockaddr in found:
        with socket.socket(family, kind, proto) as probe:
            # Not SO_REUSEPORT, so any listener is in the way; SO_REUSEADDR, so
            # connections a previous run left in TIME_WAIT are not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as bad:
                if bad.errno == errno.EADDRINUSE:
                    raise PortTaken(
                        f"port {port} is already in use ({sockaddr[0]}:{port}): another"
                        " server listens there; stop it, or set EID_LISTEN to another port"
                    ) from None
                if bad.errno == errno.EACCES:
                    raise PortTaken(f"not allowed to serve on port {port}") from None
                # Not on this machine (e.g. no IPv6): gRPC binds what it can.
                continue
