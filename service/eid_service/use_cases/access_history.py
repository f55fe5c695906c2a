"""A citizen's access history: who verified them or tried to, when, how, what
was released, and the signed receipt the party got. Only the citizen reads
it (with their session); no party reads any history."""

from __future__ import annotations

from dataclasses import dataclass, field

from eid_service.domain.audit_event_id import EVENT_ID
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.dependants import acting_for
from eid_service.use_cases.ports import AccessRecord, Repositories, UnitOfWork


@dataclass(frozen=True)
class AccessPage:
    records: list[AccessRecord]
    next_page_token: str = field(default="")


async def list_access_history(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    page_size: int,
    page_token: str,
    dependant_account_id: str = "",
) -> AccessPage:
    """The signed-in citizen's history or, for a guardian naming one of their
    dependants, the child's (while the guardian still acts for it)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, EVENT_ID)
    now = ctx.clock()

    def read(r: Repositories) -> AccessPage:
        citizen = citizen_of_session(r, session_token, now)
        whose = citizen.id
        if dependant_account_id:
            whose = acting_for(r, citizen, dependant_account_id).account.id
        # One more than asked tells whether another page follows.
        found = r.receipts.history(whose, after, size + 1)
        shown = found[:size]
        more = len(found) > size
        return AccessPage(shown, pages.next_page_token(shown[-1].verification_id) if more else "")

    return await uow.read(read)
