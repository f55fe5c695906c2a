"""A running server follows its key ring file: when `eid-server rotate-keys`
(or an operator) replaces it, the field cipher takes the new ring's
encryption keys, so the server seals with the new active key and reads blobs
sealed with it, without a restart.

The file is looked at every RELOAD_SECONDS, and at once when a blob names a
key the cipher does not hold (another process may have written it under a key
this one has not loaded yet). A ring with another HMAC key is refused: every
blind index depends on that key, so it cannot change under a running server.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keys import load_key_ring

log = logging.getLogger("eid.keys")

RELOAD_SECONDS = 1.0


class KeyRingWatcher:
    """Installs the ring at `path` into `cipher` whenever the file changes."""

    def __init__(self, path: Path, cipher: FieldCipher, hmac_key: bytes) -> None:
        self._path = path
        self._cipher = cipher
        self._hmac_key = hmac_key
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self.reloads = 0

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def check(self) -> bool:
        """Reloads the ring if its file changed; True if it installed one."""
        with self._lock:
            stamp = self._stamp()
            if stamp is None or stamp == self._seen:
                return False
            self._seen = stamp
            try:
                ring = load_key_ring(self._path)
            except (OSError, ValueError) as bad:
                # Keep serving with the keys we have; the next change is tried again.
                log.warning("key ring at %s not reloaded: %s", self._path, type(bad).__name__)
                return False
            if ring.hmac_key != self._hmac_key:
                log.error(
                    "key ring at %s not reloaded: its HMAC key differs (blind indexes"
                    " depend on it; only a restart with a migrated database may change it)",
                    self._path,
                )
                return False
            self._cipher.install(ring)
            self.reloads += 1
            log.info(
                "key ring reloaded: encryption keys %s, active %s",
                ", ".join(sorted(ring.encryption_keys)),
                ring.active_encryption_key_id,
            )
            return True
