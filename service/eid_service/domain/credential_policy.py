"""Who may try a password, and how often: a wrong guess costs the guesser.

Failures are counted per (subject, source): the person an ID number names
(whether or not it has an account) and where the guesses come from (the
relying party for Verify, the client's network address for SignIn). A source
that failed `MAX_FAILURES_PER_SOURCE` times for a subject waits until
`SOURCE_WINDOW` has passed since its last failure; every other source,
the citizen's own device included, keeps its own budget, so a stranger can
never lock a citizen out.

A subject also has a total across sources. Past `SUBJECT_CEILING` failures
in `SUBJECT_WINDOW` (far above what one source can reach: 5 per 15 minutes is
480 a day), a distributed guesser is met by a smaller budget per source
(`MAX_FAILURES_PER_SOURCE_UNDER_ATTACK`), still per source, so the citizen
keeps signing in from a source that has not failed.

An attempt is counted before the password is compared (a burst of
concurrent guesses cannot outrun the count); a right password takes its
count back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_FAILURES_PER_SOURCE = 5
SOURCE_WINDOW = timedelta(minutes=15)
SUBJECT_CEILING = 1000
SUBJECT_WINDOW = timedelta(hours=24)
MAX_FAILURES_PER_SOURCE_UNDER_ATTACK = 1


def source_budget(subject_failures: int) -> int:
    """How many failures a source may have for a subject with this total."""
    if subject_failures > SUBJECT_CEILING:
        return MAX_FAILURES_PER_SOURCE_UNDER_ATTACK
    return MAX_FAILURES_PER_SOURCE


def wait_before_next_try(
    source_failures: int, last_failure: datetime | None, budget: int, now: datetime
) -> timedelta | None:
    """None if the source may try now, else how long it must wait."""
    if last_failure is None or now - last_failure >= SOURCE_WINDOW:
        return None
    if source_failures < budget:
        return None
    return SOURCE_WINDOW - (now - last_failure)
