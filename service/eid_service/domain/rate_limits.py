"""How often anyone may make the service send an SMS or email, or probe it.

Counts are kept per key (a source address, a destination phone, a person
named by an ID number) in fixed windows shared by every server process. A
request over a limit is refused with how long to wait; it is still counted
where the count is what it probes (see the use cases), so retrying early
never helps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limit:
    """At most `hits` per `window` for one key of this `name`."""

    name: str
    hits: int
    window: timedelta

    def window_start(self, now: datetime) -> datetime:
        """The start of the fixed window `now` falls in (windows tile time from an epoch)."""
        elapsed = (now - _EPOCH) // self.window
        return _EPOCH + elapsed * self.window


@dataclass(frozen=True)
class OfficerLimits:
    """How many calls one officer's key may make, whatever they ask. Officers
    get precise answers (whether an ID number has an account, its level, its
    state), which a key stolen from a counter could ask of every ID number in
    the registry; a counter serves a citizen every few minutes, so a shift's
    work fits far below these (found by an attacker's pass)."""

    per_hour: Limit = Limit("officer-hour", 120, timedelta(hours=1))
    per_day: Limit = Limit("officer-day", 600, timedelta(days=1))


@dataclass(frozen=True)
class SendLimits:
    """The limits on everything that sends a one-time code. Defaults suit a
    national service: a household registering together from one address
    fits; a script spraying SMS or walking the registry does not."""

    register_per_source: Limit = Limit("register-source", 20, timedelta(hours=1))
    # Registrations that queued an SMS to one phone number.
    register_per_phone: Limit = Limit("register-phone", 3, timedelta(days=1))
    # Codes asked for one ID number and the contact typed (activation resend,
    # lock, unlock), each purpose on its own. First per source: what a
    # citizen needs from their own device, and all one stranger gets.
    code_per_minute: Limit = Limit("code-source-minute", 1, timedelta(minutes=1))
    code_per_day: Limit = Limit("code-source-day", 5, timedelta(days=1))
    # Then from all sources together, far above one source's: keeping the
    # citizen from a code takes 10 sources spending their day's allowance.
    # It still bounds the phone: at most 50 codes a day of each purpose
    # (sent only to an account in that purpose's state).
    code_ceiling_per_minute: Limit = Limit("code-minute", 3, timedelta(minutes=1))
    code_ceiling_per_day: Limit = Limit("code-day", 50, timedelta(days=1))
    # Code requests from one source, whatever they name.
    code_per_source: Limit = Limit("code-source", 30, timedelta(hours=1))
    # One-time codes relying parties ask for (RequestOtp): one a minute and
    # ten a day per (party, citizen), and a daily ceiling per citizen over all
    # parties, so no party, or several together, can flood a citizen's phone.
    # The ceiling is ten parties' days: when it was the same as one party's
    # day, one hostile party spent it in ten minutes and locked the citizen
    # out of codes at every other party until the next day (found by an
    # attacker's pass).
    otp_per_party_citizen: Limit = Limit("otp-party-citizen", 1, timedelta(minutes=1))
    otp_per_party_citizen_day: Limit = Limit("otp-party-citizen-day", 10, timedelta(days=1))
    otp_per_citizen: Limit = Limit("otp-citizen-day", 100, timedelta(days=1))
