"""Leader election on a coordination.k8s.io/v1 Lease: the timing decisions. Pure.

The rules are client-go's (``k8s.io/client-go/tools/leaderelection``), which controller-runtime
operators use with the defaults kept here: a Lease of 15 s, a renew deadline of 10 s, a retry
period of 2 s.

- A candidate reads the Lease every retry period. A holder that is not itself is alive as long
  as the Lease *changes*: the candidate times the lease from the moment it first saw the current
  record on its own clock (``observed_at``), never from the holder's ``renewTime``, so clocks of
  different machines never have to agree. Only when a whole lease duration has passed with no
  change may it take the Lease over (an update guarded by the resourceVersion it read: of two
  candidates, one wins and the other gets a conflict).
- The leader renews every retry period and stops acting once ``renew_deadline`` has passed
  since the *sending* of its last renewal that succeeded. Every other replica saw that renewal
  no earlier than it was sent and waits ``lease_duration`` from then: the leader has stopped
  ``lease_duration - renew_deadline`` (5 s) before anyone may take over. That margin absorbs
  scheduling delays and clock-rate differences; it is why ``renew_deadline < lease_duration``
  is required.
- A leader that stops on purpose releases the Lease (empty holder, a 1 s duration), so a standby
  takes over at its next retry instead of after a lease duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

DEFAULT_LEASE_NAME = "modelops-operator"

JITTER_FACTOR = 1.2
"""client-go's: retries are spread over ``retry_period * [1, 1.2)``; the renew deadline must exceed that."""

RELEASED_LEASE_SECONDS = 1
"""leaseDurationSeconds of a released Lease (client-go writes 1: a standby may take it at once)."""


@dataclass(frozen=True)
class LeaseTiming:
    """Seconds. The defaults are controller-runtime's."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """What is wrong with these numbers (client-go's checks); empty when they are usable."""
        out = []
        if self.retry_period <= 0:
            out.append(f"the retry period must be positive, got {self.retry_period:g}s")
        if self.lease_duration <= self.renew_deadline:
            out.append(
                f"the lease duration ({self.lease_duration:g}s) must be longer than the renew deadline "
                f"({self.renew_deadline:g}s): a leader must stop before a standby may take over"
            )
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            out.append(
                f"the renew deadline ({self.renew_deadline:g}s) must be longer than {JITTER_FACTOR:g} x the retry "
                f"period ({JITTER_FACTOR * self.retry_period:g}s): a leader needs more than one try to renew"
            )
        if self.lease_duration < 1:
            out.append(f"the lease duration must be at least 1s (leaseDurationSeconds), got {self.lease_duration:g}s")
        return out

    @property
    def lease_seconds(self) -> int:
        """``spec.leaseDurationSeconds`` as written (an integer; rounded up, never shorter)."""
        whole = int(self.lease_duration)
        return whole if whole == self.lease_duration else whole + 1


def worst_case_takeover(timing: LeaseTiming) -> float:
    """Seconds from the leader's death to a standby holding the Lease, at worst: the leader died
    just after renewing; the standby saw that renewal up to one (jittered) retry period late, and
    finds the lease expired up to one retry period after it expired. Starting the handlers adds
    the operator's start-up time to this."""
    return timing.lease_duration + 2 * JITTER_FACTOR * timing.retry_period


def stop_margin(timing: LeaseTiming) -> float:
    """Seconds between a cut-off leader stopping and the earliest takeover by anyone else."""
    return timing.lease_duration - timing.renew_deadline


@dataclass(frozen=True)
class LeaseRecord:
    """What a candidate reads from the Lease (``spec``) and the version it read."""

    holder: str
    """``holderIdentity``; empty: nobody holds it (released, or never held)."""
    lease_seconds: int | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    transitions: int
    resource_version: str


class Move(Enum):
    CREATE = "create"
    """No Lease yet: create it, holding it."""
    RENEW = "renew"
    """This replica holds it: write a new renewTime."""
    TAKE_OVER = "take-over"
    """Nobody holds it, or the holder let it expire: write this replica as the holder."""
    WAIT = "wait"
    """Someone else holds it and it has not expired (on this replica's clock)."""


def next_move(record: LeaseRecord | None, identity: str, observed_at: float, now: float, timing: LeaseTiming) -> Move:
    """What a replica does with the Lease it just read.

    ``observed_at`` is when this replica first read the record as it is now (same
    resourceVersion), ``now`` the current time, both on this replica's monotonic clock.
    """
    if record is None:
        return Move.CREATE
    if record.holder == identity:
        return Move.RENEW
    if not record.holder:
        return Move.TAKE_OVER
    duration = record.lease_seconds if record.lease_seconds and record.lease_seconds > 0 else timing.lease_duration
    return Move.TAKE_OVER if now - observed_at >= duration else Move.WAIT


def still_leading(last_renewal_sent: float, now: float, timing: LeaseTiming) -> bool:
    """Whether a leader may keep acting: its last successful renewal was *sent* less than the
    renew deadline ago (monotonic seconds)."""
    return now - last_renewal_sent < timing.renew_deadline


def micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    record: LeaseRecord | None, move: Move, identity: str, now: datetime, timing: LeaseTiming
) -> dict[str, object]:
    """The Lease ``spec`` to write for ``move`` (CREATE, RENEW or TAKE_OVER)."""
    if move is Move.WAIT:
        raise ValueError("nothing to write while waiting")
    stamp = micro_time(now)
    transitions = record.transitions if record is not None else 0
    if move is Move.RENEW and record is not None:
        acquired = micro_time(record.acquired_at) if record.acquired_at is not None else stamp
    else:
        acquired = stamp
        if record is not None:  # client-go counts every acquisition of an existing Lease, a released one too
            transitions += 1
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": timing.lease_seconds,
        "acquireTime": acquired,
        "renewTime": stamp,
        "leaseTransitions": transitions,
    }


def released_spec(record: LeaseRecord, now: datetime) -> dict[str, object]:
    """The spec a leader writes when it stops on purpose: nobody holds it, and it expires at once."""
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": RELEASED_LEASE_SECONDS,
        "acquireTime": micro_time(record.acquired_at or now),
        "renewTime": micro_time(now),
        "leaseTransitions": record.transitions,
    }


__all__ = [
    "DEFAULT_LEASE_NAME",
    "JITTER_FACTOR",
    "LeaseRecord",
    "LeaseTiming",
    "Move",
    "lease_spec",
    "micro_time",
    "next_move",
    "released_spec",
    "still_leading",
    "stop_margin",
    "worst_case_takeover",
]
