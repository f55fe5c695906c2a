"""What :class:`~eid_client.EidClient` and :class:`~eid_client.AsyncEidClient` share:
the caller's credentials, kept between calls, and the call deadline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eid_client import _requests as req

DEFAULT_TARGET = "127.0.0.1:50051"

ChannelOptions = Sequence[tuple[str, Any]]


class _Tokens(Protocol):
    """SignInResponse and RefreshSessionResponse both carry these."""

    @property
    def session_token(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def session_id(self) -> str: ...


class Credentials:
    """Who is calling: a relying party's API key, a registration officer's key
    and the citizen session's tokens (kept by ``sign_in``/``refresh_session``,
    forgotten by ``sign_out``)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        session_token: str | None,
        refresh_token: str | None,
        officer_key: str | None,
        timeout: float,
    ) -> None:
        self.api_key = api_key
        # The access token, for `authorization: Bearer`; set by sign_in() and
        # refresh_session(), or given up front to reuse a session.
        self.session_token = session_token
        # Single use: each refresh_session() spends it and keeps the next one.
        self.refresh_token = refresh_token
        # The kept session's id, as list_sessions() shows it (when known).
        self.session_id: str | None = None
        self.officer_key = officer_key
        self.timeout = timeout

    def _session(self, override: str | None) -> req.Metadata:
        return req.session_metadata(override or self.session_token)

    def _officer(self, override: str | None) -> req.Metadata:
        return req.officer_metadata(override or self.officer_key)

    def _refresh_token(self, override: str | None) -> str:
        token = override or self.refresh_token
        if not token:
            raise ValueError(
                "no refresh token: call sign_in() first or pass refresh_token= "
                "(or create the client with refresh_token=)"
            )
        return token

    def _keep(self, tokens: _Tokens) -> None:
        self.session_token = tokens.session_token
        self.refresh_token = tokens.refresh_token or None
        self.session_id = tokens.session_id or None

    def _forget(self) -> None:
        self.session_token = None
        self.refresh_token = None
        self.session_id = None

    def _ends_kept_session(self, override: str | None) -> bool:
        """Whether a call on ``override`` (or the kept session) ends the kept session."""
        return override is None or override == self.session_token
