"""Admission of password work: a process takes on so many password checks at
once (each one Argon2id run, hashing or waiting for a hash thread), and
refuses the next at once rather than queue it behind the rest. A flood of
sign-ins then costs its senders fast refusals, and the hash threads can never
hold a backlog that other calls wait behind.

The refusal comes before anything is read or counted, so it is the same for
every ID number, whether it names an account or not, and a refused check
leaves no failed attempt behind."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from eid_service.domain.errors import Unavailable
from eid_service.use_cases.outliving import outliving

T = TypeVar("T")

RETRY_AFTER_SECONDS = "1"


def password_checks_busy() -> Unavailable:
    return Unavailable(
        reason="PASSWORD_CHECKS_BUSY",
        message="this server is checking as many passwords as it can; retry shortly",
        metadata={"retry_after_seconds": RETRY_AFTER_SECONDS},
    )


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        # A quarter of the places only relying parties' checks (Verify) may
        # take: parties are known and rate limited, anyone may sign in, so a
        # flood of sign-ins cannot keep a party's Verify out.
        self.kept_for_parties = limit // 4
        self.admitted = 0

    def enter(self, *, party: bool = False) -> None:
        """Takes a place, or raises PASSWORD_CHECKS_BUSY; `leave` gives it back."""
        if self.admitted >= (self.limit if party else self.limit - self.kept_for_parties):
            raise password_checks_busy()
        self.admitted += 1

    def leave(self) -> None:
        self.admitted -= 1

    async def hold_through(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs `work` in a place (or raises PASSWORD_CHECKS_BUSY), and keeps
        the place until `work` ends, even if the caller leaves first: a hash
        thread goes on with a cancelled call's Argon2id run, and the place
        stands for that thread."""
        try:
            self.enter()
        except BaseException:
            work.close()  # refused: never started, and never to be
            raise
        task = outliving(work)
        task.add_done_callback(lambda _: self.leave())
        return await asyncio.shield(task)
