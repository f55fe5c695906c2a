"""Work that must finish even if the call that started it is cancelled (a
deadline, a client gone): a password check that counted an attempt, an
Argon2id run a hash thread goes on with."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def outliving(work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """`work` as a task of its own, to await through `asyncio.shield`; a
    failure that nobody is left to hear is retrieved, not logged as lost."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_heard)
    return task


def _heard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
