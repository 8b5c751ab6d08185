"""When a rollout in progress is reconciled again if no event comes first. Pure.

Events announce every change in the cluster a rollout waits for (pods getting ready, a control
request, a version approved): each reconciles the ModelDeployment at once. What no event
announces is time, and :func:`modelops.core.rollout.decide` returns it as ``wait_until``: the end
of a pause, the next measurement of an analysis, the progress deadline. The rollout is looked at
again exactly then, never later.

Between those, a re-check catches what is not watched (a Secret or Gateway created after the
rollout held for it, an API call that failed): one second after a reconcile changed something,
then ever more rarely while nothing changes (the delay is the time since the last change,
between ``RECHECK_MIN`` and ``RECHECK_MAX``: it doubles at each quiet re-check). A hundred
rollouts sitting in an hour-long pause cost a few reconciles a second, not a hundred.

All rollout state is in status, so nothing here needs to survive a restart: a restarted
operator reconciles every ModelDeployment once and gets ``wait_until`` back from ``decide``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

RECHECK_MIN = timedelta(seconds=1)
RECHECK_MAX = timedelta(seconds=30)


def recheck_delay(quiet_for: timedelta, floor: timedelta = RECHECK_MIN, ceiling: timedelta = RECHECK_MAX) -> timedelta:
    """The re-check delay after ``quiet_for`` without a change: that long again, within bounds."""
    return min(max(quiet_for, floor), ceiling)


def next_check(
    now: datetime,
    wait_until: datetime | None,
    quiet_since: datetime,
    floor: timedelta = RECHECK_MIN,
    ceiling: timedelta = RECHECK_MAX,
) -> datetime:
    """The time to reconcile again without an event: the re-check, or ``wait_until`` (something
    falls due) when that is sooner; a ``wait_until`` already past means now."""
    at = now + recheck_delay(max(now - quiet_since, timedelta(0)), floor, ceiling)
    if wait_until is not None:
        at = min(at, max(wait_until, now))
    return at


__all__ = ["RECHECK_MAX", "RECHECK_MIN", "next_check", "recheck_delay"]
