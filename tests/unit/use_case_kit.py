"""A world for use-case tests: the fake store, a clock, counted hashing, and
the steps citizens and relying parties take, written as a client would."""

from __future__ import annotations

import asyncio
import copy
import pickle
import re
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest

from eid_service.demo import demo_person, portrait_capture
from eid_service.domain.account import Account, AccountState
from eid_service.domain.activation import CodePurpose
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.contact import parse_email, parse_vn_mobile
from eid_service.domain.errors import DomainError
from eid_service.domain.notices import NoticeKind
from eid_service.domain.officer import Officer
from eid_service.domain.party import MAX_RATE_PER_MINUTE, RelyingParty, new_party_id
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.rate_limits import SendLimits
from eid_service.domain.share import Attribute, ShareMode
from eid_service.domain.share_grant import ShareGrant
from eid_service.security.signing_keys import SigningKeySet
from eid_service.use_cases.activate import ActivateCommand, activate
from eid_service.use_cases.lock import (
    LockCommand,
    LockProof,
    StateChange,
    lock_account,
    unlock_by_citizen,
    unlock_by_officer,
)
from eid_service.use_cases.one_time_codes import CodeRequest, CodeSent, request_code
from eid_service.use_cases.ports import AuditEvent, IssuedTokens, Repositories
from eid_service.use_cases.register import RegisterCommand, Registered, register
from eid_service.use_cases.replies import Reply
from eid_service.use_cases.sessions import (
    SessionPage,
    list_sessions,
    refresh_session,
    revoke_session,
    sign_out,
)
from eid_service.use_cases.share import (
    IssuedShare,
    ShareCommand,
    SharePage,
    list_shares,
    revoke_share,
    share_via_qr,
)
from eid_service.use_cases.sign_in import SignedIn, sign_in
from eid_service.use_cases.signing_keys import key_set, new_current_key
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify import verify_password
from eid_service.use_cases.verify_share import redeem_share
from tests.unit.fake_store import FakeClock, FakePasswordHashing, FakeUnitOfWork, fake_context

T = TypeVar("T")

PASSWORD = "correct horse battery staple"
CITIZEN_IP = "ip:192.0.2.1"
STRANGER_IP = "ip:203.0.113.66"
WRONG_PASSWORD = "a wrong password"
EVERYTHING = frozenset(Attribute)


@dataclass(frozen=True)
class Citizen:
    demographics: Demographics
    phone: str
    email: str = ""

    @property
    def personal_id(self) -> str:
        return self.demographics.personal_id


def _citizen(name: str, born: date, gender: Gender, serial: int, phone: str) -> Citizen:
    pid = make_personal_id("001", born, gender, serial).value
    return Citizen(Demographics(pid, name, born, gender), phone, "")


LAN = _citizen("Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE, 791514, "0912345678")
MINH = _citizen("Trần Văn Minh", date(1985, 11, 2), Gender.MALE, 123456, "0987654321")
CHILD = _citizen("Lê Văn An", date(2015, 1, 9), Gender.MALE, 4242, "0911111111")
# Well-formed, but nobody in the registry has it.
STRANGER = _citizen("Phạm Thị Hoa", date(1992, 2, 2), Gender.FEMALE, 999999, "0933333333")


def unknown_id(serial: int) -> str:
    return make_personal_id("079", date(1980, 1, 1), Gender.MALE, serial).value


@dataclass(frozen=True)
class Cost:
    hashes: int
    verifications: int
    writes: int
    reads: int

    def __sub__(self, other: Cost) -> Cost:
        return Cost(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


def _unpickle(data: bytes) -> object:
    return pickle.loads(data)  # noqa: S301 (bytes this test pickled itself)


async def refused(call: Awaitable[object]) -> DomainError:
    """The domain error `call` raises (the test fails if it raises none)."""
    with pytest.raises(DomainError) as caught:
        await call
    return caught.value


async def cancelled_once_counted(
    world: World, call: Awaitable[object], monkeypatch: pytest.MonkeyPatch, *, cancels: int = 1
) -> None:
    """Runs a password check and cancels it `cancels` times (a deadline, a
    client gone, the server's deadline cap) just after the transaction that
    counts its attempt has committed, before its caller hears so: a real
    database finishes what it was sent. Returns once the cancelled caller
    has, and checks the password was compared by then and the check's
    place among the process's password checks given back."""
    counted, answer = asyncio.Event(), asyncio.Event()
    atomically = world.uow.atomically
    compared = world.passwords.verifications

    async def late(work: Callable[[Repositories], T], *, long: bool = False) -> T:
        attempts = copy.deepcopy(world.uow.state.attempts)
        done = await atomically(work, long=long)
        if world.uow.state.attempts != attempts and not counted.is_set():
            counted.set()
            await answer.wait()
        return done

    with monkeypatch.context() as patch:
        patch.setattr(world.uow, "atomically", late)
        caller = asyncio.ensure_future(call)
        counting = asyncio.ensure_future(counted.wait())
        await asyncio.wait({caller, counting}, return_when=asyncio.FIRST_COMPLETED)
        counting.cancel()
        assert not caller.done(), f"the check ended without counting: {caller.result()!r}"
        for _ in range(cancels):
            caller.cancel()
            for _ in range(5):  # the caller takes the cancellation in
                await asyncio.sleep(0)
        answer.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert world.passwords.verifications == compared + 1
    assert world.ctx.password_admission.admitted == 0


def as_seen(error: DomainError) -> tuple[str, str, str, dict[str, str]]:
    """Everything a client learns from an error."""
    return type(error).__name__, error.reason, error.message, error.metadata


def _code_in(body: str | None) -> str:
    assert body is not None
    found = re.search(r"\b(\d{6})\b", body)
    assert found is not None
    return found.group(1)


def _destination(contact: str) -> str:
    """A phone or email as the store keeps it (E.164, lower-cased domain)."""
    if "@" in contact:
        parsed = parse_email(contact)
        assert parsed is not None
        return parsed
    return parse_vn_mobile(contact)


class World:
    def __init__(self, send_limits: SendLimits | None = None) -> None:
        self.clock = FakeClock()
        self.passwords = FakePasswordHashing()
        self.uow = FakeUnitOfWork()
        self.ctx = fake_context(self.clock, self.passwords)
        if send_limits is not None:
            self.ctx = replace(self.ctx, send_limits=send_limits)
        self.api_keys: dict[str, str] = {}
        self.enrol(LAN, MINH, CHILD)
        self.uow.run_now(lambda r: new_current_key(r, self.clock()))

    def enrol(self, *citizens: Citizen) -> None:
        """Adds citizens to the registry, each with their (demo) enrolled portrait."""
        self.uow.run_now(
            lambda r: [r.registry.put_person(demo_person(c.demographics)) for c in citizens]
        )

    async def keys(self) -> SigningKeySet:
        """The share-signing keys the use cases see now."""
        return await self.ctx.signing_keys.current(self.uow)

    def keys_now(self, r: Repositories) -> SigningKeySet:
        """The same, built inside a transaction of the fake store (no cache)."""
        return key_set(r.signing_keys.all(), self.ctx.signing_keys.policy)

    def cost(self) -> Cost:
        p, u = self.passwords, self.uow
        return Cost(p.hashes, p.verifications, u.writes, u.reads)

    def reply(self, result: type[T], rpc: str, request: object, request_id: str) -> Reply[T, T]:
        """What the API edge would pass: the result itself is the answer, pickled."""

        def present(done: T) -> T:
            return done

        def decode(data: bytes) -> T:
            answer = _unpickle(data)
            assert isinstance(answer, result)
            return answer

        return Reply(
            rpc=rpc,
            request_id=request_id,
            request=repr(request).encode(),
            present=present,
            encode=pickle.dumps,
            decode=decode,
            fingerprint=self.ctx.fingerprint,
        )

    def done_reply(self, rpc: str, request: object, request_id: str) -> Reply[None, str]:
        """For RPCs whose result is None: the API edge answers an empty message
        (never None, which `Reply.replay` reads as "no earlier answer")."""

        def present(done: None) -> str:
            return "done"

        def decode(data: bytes) -> str:
            return data.decode()

        return Reply(
            rpc=rpc,
            request_id=request_id,
            request=repr(request).encode(),
            present=present,
            encode=str.encode,
            decode=decode,
            fingerprint=self.ctx.fingerprint,
        )

    # ---- citizens ------------------------------------------------------------

    def register_command(self, citizen: Citizen, **changes: Any) -> RegisterCommand:
        d = citizen.demographics
        cmd = RegisterCommand(
            personal_id=d.personal_id,
            full_name=d.full_name,
            birth_date=d.birth_date.isoformat(),
            gender=d.gender,
            phone_number=citizen.phone,
            email=citizen.email,
            # The app's capture of the citizen's face: it matches the enrolled one.
            portrait=portrait_capture(d.personal_id),
        )
        return replace(cmd, **changes)

    async def register(
        self,
        citizen: Citizen,
        *,
        request_id: str = "",
        source: str = CITIZEN_IP,
        **changes: Any,
    ) -> Registered:
        cmd = self.register_command(citizen, **changes)
        reply = self.reply(Registered, "register", astuple(cmd), request_id)
        return await register(self.uow, self.ctx, cmd, reply, source=source)

    def activation_code(self, citizen: Citizen) -> str:
        """The code in the last SMS to the citizen's phone."""
        phone = parse_vn_mobile(citizen.phone)
        bodies = [
            m.notice.body
            for m in self.uow.state.outbox.values()
            if m.destination == phone and m.notice is not None
        ]
        assert bodies
        return _code_in(bodies[-1])

    def sent_to(self, contact: str) -> list[NoticeKind]:
        """The kinds of the messages written to a phone or email, oldest first."""
        to = _destination(contact)
        return [
            m.notice.kind
            for m in self.uow.state.outbox.values()
            if m.destination == to and m.notice is not None
        ]

    def newest_code(self, contact: str, kind: NoticeKind | None = None) -> str:
        """The code in the newest message (of `kind`, if given) to a phone or email."""
        to = _destination(contact)
        bodies = [
            m.notice.body
            for m in self.uow.state.outbox.values()
            if m.destination == to
            and m.notice is not None
            and (kind is None or m.notice.kind is kind)
        ]
        assert bodies, "nothing was sent there"
        return _code_in(bodies[-1])

    async def request_code(
        self,
        purpose: CodePurpose,
        citizen: Citizen | str,
        *,
        phone: str = "",
        email: str = "",
        source: str = CITIZEN_IP,
        request_id: str = "",
    ) -> CodeSent:
        """ResendActivationCode (ACTIVATION) or SendAccountCode (LOCK, UNLOCK)."""
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        req = CodeRequest(purpose, pid, phone, email)
        rpc = "resend_activation_code" if purpose is CodePurpose.ACTIVATION else "send_account_code"
        reply = self.reply(CodeSent, rpc, astuple(req), request_id)
        return await request_code(self.uow, self.ctx, req, reply, source=source)

    async def activate(
        self,
        citizen: Citizen,
        code: str | None = None,
        *,
        password: str = PASSWORD,
        request_id: str = "",
        source: str = CITIZEN_IP,
    ) -> Account:
        given = self.activation_code(citizen) if code is None else code
        cmd = ActivateCommand(citizen.personal_id, given, password)
        reply = self.reply(Account, "activate", astuple(cmd), request_id)
        return await activate(self.uow, self.ctx, cmd, reply, source=source)

    async def active(self, citizen: Citizen) -> Account:
        """Registered and activated with PASSWORD."""
        await self.register(citizen)
        return await self.activate(citizen)

    async def sign_in(
        self,
        citizen: Citizen | str,
        password: str = PASSWORD,
        *,
        source: str = CITIZEN_IP,
        device_name: str = "",
        request_id: str = "",
    ) -> SignedIn:
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        reply = self.reply(SignedIn, "sign_in", (pid, password, device_name), request_id)
        return await sign_in(
            self.uow, self.ctx, pid, password, reply, source=source, device_name=device_name
        )

    # ---- sessions ------------------------------------------------------------

    async def refresh(self, refresh_token: str, *, request_id: str = "") -> IssuedTokens:
        reply = self.reply(IssuedTokens, "refresh_session", refresh_token, request_id)
        return await refresh_session(self.uow, self.ctx, refresh_token, reply)

    async def sign_out(self, access_token: str | None, *, request_id: str = "") -> str:
        reply = self.done_reply("sign_out", (), request_id)
        return await sign_out(self.uow, self.ctx, access_token, reply)

    async def sessions(
        self, access_token: str | None, page_size: int = 0, page_token: str = ""
    ) -> SessionPage:
        return await list_sessions(self.uow, self.ctx, access_token, page_size, page_token)

    async def revoke_session(
        self, access_token: str | None, session_id: str, *, request_id: str = ""
    ) -> str:
        reply = self.done_reply("revoke_session", session_id, request_id)
        return await revoke_session(self.uow, self.ctx, access_token, session_id, reply)

    def revoked_reason(self, session_id: str) -> str | None:
        """Why the session was ended (None while it is not)."""
        return self.uow.state.sessions[session_id].revoked_reason

    # ---- lock and unlock -----------------------------------------------------

    async def lock(
        self,
        proof: LockProof,
        *,
        access_token: str = "",
        citizen: Citizen | str = "",
        password: str = "",
        code: str = "",
        source: str = CITIZEN_IP,
        request_id: str = "",
    ) -> StateChange:
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        cmd = LockCommand(proof, access_token, pid, password, code)
        reply = self.reply(StateChange, "lock_account", astuple(cmd), request_id)
        return await lock_account(self.uow, self.ctx, cmd, reply, source=source)

    def officer(self, name: str = "Officer Hà") -> tuple[Officer, str]:
        """A registration officer and its key."""
        return self.uow.run_now(lambda r: r.officers.create(name, self.clock()))

    async def unlock_by_officer(
        self, officer_key: str | None, citizen: Citizen | str, *, request_id: str = ""
    ) -> StateChange:
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        reply = self.reply(StateChange, "unlock_account", ("officer", pid), request_id)
        return await unlock_by_officer(self.uow, self.ctx, officer_key, pid, reply)

    async def unlock_by_citizen(
        self,
        citizen: Citizen | str,
        code: str,
        password: str = PASSWORD,
        *,
        source: str = CITIZEN_IP,
        request_id: str = "",
    ) -> StateChange:
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        request = ("citizen", pid, password, code)
        reply = self.reply(StateChange, "unlock_account", request, request_id)
        return await unlock_by_citizen(
            self.uow, self.ctx, pid, password, code, reply, source=source
        )

    def state_of(self, citizen: Citizen) -> AccountState:
        account = self.uow.run_now(lambda r: r.accounts.find_by_personal_id(citizen.personal_id))
        assert account is not None
        return account.state

    def set_state(self, citizen: Citizen, state: AccountState) -> None:
        """What an operator does (there is no use case for it yet)."""
        for account in self.uow.state.accounts.values():
            if account.demographics.personal_id == citizen.personal_id:
                account.state = state

    def history(self, citizen: Citizen | str) -> list[tuple[str, str, str | None]]:
        """(action, outcome, party id) of the citizen's audit events, oldest first."""
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        subject = self.uow.run_now(lambda r: r.accounts.credential(pid).subject)
        return [
            (e.action, e.outcome, e.party_id)
            for e in self.uow.run_now(lambda r: r.audit.history(subject))
        ]

    def audit_events(self, citizen: Citizen | str) -> list[AuditEvent]:
        """The citizen's audit events as stored (with the actor), oldest first."""
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        subject = self.uow.run_now(lambda r: r.accounts.credential(pid).subject)
        return self.uow.run_now(lambda r: r.audit.history(subject))

    def chain_intact(self, citizen: Citizen) -> bool:
        subject = self.uow.run_now(lambda r: r.accounts.credential(citizen.personal_id).subject)
        return self.uow.run_now(lambda r: r.audit.check_chain(subject)).broken is None

    # ---- relying parties -----------------------------------------------------

    def party(
        self,
        name: str = "Demo Bank",
        scopes: frozenset[Attribute] = EVERYTHING,
        *,
        rate: int = MAX_RATE_PER_MINUTE,
        citizen_rate: int = MAX_RATE_PER_MINUTE,
    ) -> RelyingParty:
        """A party allowed every Verify mode (password too). Its rate limits
        are the highest an operator can set, as suites call about one citizen
        many times; the limits' own tests pass tighter ones."""
        party = RelyingParty(
            new_party_id(),
            name,
            scopes,
            rate_per_minute=rate,
            citizen_rate_per_minute=citizen_rate,
        )
        self.api_keys[party.id] = self.uow.run_now(lambda r: r.parties.create(party, self.clock()))
        return party

    async def verify(
        self, party: RelyingParty, personal_id: str, password: str, *, request_id: str = ""
    ) -> Verification:
        reply = self.reply(Verification, "verify", (personal_id, password), request_id)
        return await verify_password(self.uow, self.ctx, party, personal_id, password, reply)

    async def share(
        self,
        session_token: str | None,
        attributes: list[Attribute | None],
        *,
        audience: str = "",
        ttl: timedelta | None = None,
        request_id: str = "",
        mode: ShareMode = ShareMode.ONLINE,
        multi_use: bool = False,
    ) -> IssuedShare:
        cmd = ShareCommand(attributes, audience, ttl, mode, multi_use)
        reply = self.reply(IssuedShare, "share", astuple(cmd), request_id)
        return await share_via_qr(self.uow, self.ctx, session_token, cmd, reply)

    async def shares(
        self,
        session_token: str | None,
        *,
        page_size: int = 0,
        page_token: str = "",
        dependant: str = "",
    ) -> SharePage:
        return await list_shares(
            self.uow, self.ctx, session_token, page_size, page_token, dependant
        )

    async def revoke_share(
        self,
        session_token: str | None,
        share_id: str,
        *,
        request_id: str = "",
        dependant: str = "",
    ) -> ShareGrant:
        reply = self.reply(ShareGrant, "revoke_share", (share_id, dependant), request_id)
        return await revoke_share(self.uow, self.ctx, session_token, share_id, reply, dependant)

    async def redeem(
        self, party: RelyingParty, token: str, *, request_id: str = ""
    ) -> Verification:
        reply = self.reply(Verification, "verify", token, request_id)
        return await redeem_share(self.uow, self.ctx, party, token, reply)

    async def shared_by(
        self,
        citizen: Citizen,
        attributes: list[Attribute | None],
        *,
        audience: str = "",
        mode: ShareMode = ShareMode.ONLINE,
        multi_use: bool = False,
    ) -> IssuedShare:
        """`citizen` (already active) signs in and shares for the default 5 minutes."""
        session = await self.sign_in(citizen)
        return await self.share(
            session.tokens.access_token,
            attributes,
            audience=audience,
            mode=mode,
            multi_use=multi_use,
        )
