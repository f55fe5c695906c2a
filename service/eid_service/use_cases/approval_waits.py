"""How many approval waits (verify_approval.py) one relying party holds at
once in a server process.

A wait is a Verify call held open for up to a minute, reading the store
every POLL_SECONDS: one of the worker's max_concurrent_rpcs places for as
long as it waits. Uncapped, one party held them all with waits on one
request of its own, and every other call was refused SERVER_BUSY (found by
an attacker's pass). Past its share a party's next wait is refused at once
(APPROVAL_WAITS_EXCEEDED), before it takes a token or waits; a wait that
ends (answered, out of time, cancelled) gives its place back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from eid_service.domain.approval import approval_waits_exceeded

# A party waits in at most 1 in PARTY_SHARE of the worker's calls at once:
# one party never keeps the others out (ten parties would have to wait at once).
# A share, not a fixed few: a busy party keeps a long poll open for each
# citizen deciding, which a fixed few would refuse in ordinary use; its rate
# limit (a token a wait) already bounds how many waits it starts.
PARTY_SHARE = 10


class ApprovalWaits:
    def __init__(self, max_concurrent_rpcs: int) -> None:
        # At least one, so that a server taking few calls still serves waits.
        self.per_party = max(1, max_concurrent_rpcs // PARTY_SHARE)
        self._held: dict[str, int] = {}

    @contextlib.contextmanager
    def place(self, party_id: str) -> Iterator[None]:
        """Holds one of the party's places for the block, or raises
        APPROVAL_WAITS_EXCEEDED when it holds them all."""
        held = self._held.get(party_id, 0)
        if held >= self.per_party:
            raise approval_waits_exceeded(self.per_party)
        self._held[party_id] = held + 1
        try:
            yield
        finally:
            left = self._held[party_id] - 1
            if left:
                self._held[party_id] = left
            else:
                del self._held[party_id]

    def __len__(self) -> int:
        """How many waits are held (tests check none are left)."""
        return sum(self._held.values())
