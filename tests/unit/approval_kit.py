"""The steps of the approval flow as a party and a citizen's app take them,
against the fake store (see use_case_kit.World)."""

from __future__ import annotations

from eid_service.domain.party import RelyingParty
from eid_service.domain.share import Attribute
from eid_service.use_cases.approval_decisions import Decision, claim_approval, decide_approval
from eid_service.use_cases.approvals import (
    ApprovalPage,
    ApprovalView,
    StartCommand,
    StartedApproval,
    list_approval_requests,
    start_approval,
)
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_approval import verify_approval
from tests.unit.use_case_kit import Citizen, World


async def start(
    world: World,
    party: RelyingParty,
    citizen: Citizen | str = "",
    *,
    requested: frozenset[Attribute] | None = None,
    message: str = "",
    request_id: str = "",
) -> StartedApproval:
    pid = citizen if isinstance(citizen, str) else citizen.personal_id
    cmd = StartCommand(pid, requested, message)
    reply = world.reply(StartedApproval, "start_approval", (pid, requested, message), request_id)
    return await start_approval(world.uow, world.ctx, party, cmd, reply)


async def collect(
    world: World,
    party: RelyingParty,
    approval_id: str,
    *,
    wait: float = 0.0,
    requested: frozenset[Attribute] | None = None,
    request_id: str = "",
) -> Verification:
    """The party's Verify with the approval credential."""
    reply = world.reply(Verification, "verify", (approval_id, requested), request_id)
    return await verify_approval(
        world.uow, world.ctx, party, approval_id, requested, reply, wait_seconds=wait
    )


async def pending(
    world: World, session: str | None, page_size: int = 0, page_token: str = ""
) -> ApprovalPage:
    return await list_approval_requests(world.uow, world.ctx, session, page_size, page_token)


async def decide(
    world: World,
    session: str | None,
    approval_id: str,
    code: str = "",
    *,
    approve: bool = True,
    request_id: str = "",
) -> ApprovalView:
    decision = Decision(approval_id, approve, code)
    reply = world.reply(ApprovalView, "decide_approval", (approval_id, approve, code), request_id)
    return await decide_approval(world.uow, world.ctx, session, decision, reply)


async def claim(
    world: World, session: str | None, token: str, *, request_id: str = ""
) -> ApprovalView:
    reply = world.reply(ApprovalView, "claim_approval", token, request_id)
    return await claim_approval(world.uow, world.ctx, session, token, reply)


async def session_of(world: World, citizen: Citizen) -> str:
    """The citizen (already active) signs in on their phone."""
    return (await world.sign_in(citizen)).tokens.access_token


def wrong(code: str) -> str:
    """Another 4-digit code."""
    return f"{(int(code) + 1) % 10_000:04d}"
