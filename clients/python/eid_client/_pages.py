"""Following AIP-158 pages: every item of a List call, page after page, for
the sync and the async clients alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


P = TypeVar("P", bound=Page)


def follow_pages(fetch: Callable[[str], P], items: Callable[[P], Iterable[T]]) -> Iterator[T]:
    """The items of every page `fetch(page_token)` returns, from the first page on."""
    page_token = ""
    while True:
        page = fetch(page_token)
        yield from items(page)
        page_token = page.next_page_token
        if not page_token:
            return


async def follow_pages_async(
    fetch: Callable[[str], Awaitable[P]], items: Callable[[P], Iterable[T]]
) -> AsyncIterator[T]:
    """`follow_pages` for the async client (``async for``)."""
    page_token = ""
    while True:
        page = await fetch(page_token)
        for item in items(page):
            yield item
        page_token = page.next_page_token
        if not page_token:
            return
