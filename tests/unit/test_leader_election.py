"""The pure timing of leader election (modelops.core.leader_election), with the default numbers
(controller-runtime's: 15 s lease, 10 s renew deadline, 2 s retry period) written out as fixed
numbers, not read from the code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelops.core.leader_election import (
    LeaseRecord,
    LeaseTiming,
    Move,
    lease_spec,
    micro_time,
    next_move,
    released_spec,
    still_leading,
    stop_margin,
    worst_case_takeover,
)

DEFAULT = LeaseTiming()
T0 = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=UTC)


def record(holder: str, lease_seconds: int | None = 15, transitions: int = 3, rv: str = "7") -> LeaseRecord:
    return LeaseRecord(holder, lease_seconds, T0, T0, transitions, rv)


def test_the_defaults_are_controller_runtimes() -> None:
    assert (DEFAULT.lease_duration, DEFAULT.renew_deadline, DEFAULT.retry_period) == (15.0, 10.0, 2.0)
    assert DEFAULT.problems() == []
    assert DEFAULT.lease_seconds == 15


@pytest.mark.parametrize(
    ("rec", "observed_at", "now", "move"),
    [
        # nobody ever held it
        (None, 100.0, 100.0, Move.CREATE),
        # this replica holds it: renew, whatever the clocks say
        (record("me"), 100.0, 100.0, Move.RENEW),
        (record("me"), 100.0, 200.0, Move.RENEW),
        # released (empty holder): take it at once
        (record("", lease_seconds=1), 100.0, 100.0, Move.TAKE_OVER),
        # another holder: the lease counts from when THIS replica first saw the record
        (record("other"), 100.0, 100.0, Move.WAIT),
        (record("other"), 100.0, 110.0, Move.WAIT),  # past the renew deadline, not the lease
        (record("other"), 100.0, 114.9, Move.WAIT),
        (record("other"), 100.0, 115.0, Move.TAKE_OVER),  # 15 s without a change
        (record("other"), 100.0, 130.0, Move.TAKE_OVER),
        # the record's own duration wins over ours (a holder configured with a 60 s lease)
        (record("other", lease_seconds=60), 100.0, 130.0, Move.WAIT),
        (record("other", lease_seconds=60), 100.0, 160.0, Move.TAKE_OVER),
        # a record without a duration: ours (15 s)
        (record("other", lease_seconds=None), 100.0, 114.0, Move.WAIT),
        (record("other", lease_seconds=None), 100.0, 115.5, Move.TAKE_OVER),
    ],
)
def test_next_move(rec: LeaseRecord | None, observed_at: float, now: float, move: Move) -> None:
    assert next_move(rec, "me", observed_at, now, DEFAULT) is move


@pytest.mark.parametrize(
    ("last_sent", "now", "leading"),
    [(100.0, 100.0, True), (100.0, 105.0, True), (100.0, 109.99, True), (100.0, 110.0, False), (100.0, 140.0, False)],
)
def test_a_leader_stops_at_the_renew_deadline(last_sent: float, now: float, leading: bool) -> None:
    assert still_leading(last_sent, now, DEFAULT) is leading


def test_a_cut_off_leader_stops_before_anyone_may_take_over() -> None:
    """The renewal was sent at 100; a standby saw it no earlier than 100. The leader stops at 110,
    the standby may take over at 115 at the earliest: a 5 s margin, and a takeover within 30 s."""
    sent = 100.0
    first_takeover = min(
        t / 10 for t in range(1000, 1400) if next_move(record("a"), "b", sent, t / 10, DEFAULT) is Move.TAKE_OVER
    )
    last_acting = max(t / 10 for t in range(1000, 1400) if still_leading(sent, t / 10, DEFAULT))
    assert (last_acting, first_takeover) == (109.9, 115.0)
    assert stop_margin(DEFAULT) == 5.0
    assert worst_case_takeover(DEFAULT) == pytest.approx(19.8)  # 15 + 2 x 1.2 x 2 s: within 30 s
    assert worst_case_takeover(LeaseTiming(3, 2, 0.5)) == pytest.approx(4.2)  # the HA tests' numbers


@pytest.mark.parametrize(
    ("timing", "complaint"),
    [
        (LeaseTiming(10, 10, 2), "must be longer than the renew deadline"),
        (LeaseTiming(10, 12, 2), "must be longer than the renew deadline"),
        (LeaseTiming(15, 2.4, 2), "1.2 x the retry period"),
        (LeaseTiming(15, 10, 0), "must be positive"),
        (LeaseTiming(0.9, 0.5, 0.1), "at least 1s"),
    ],
)
def test_unsafe_timings_are_refused(timing: LeaseTiming, complaint: str) -> None:
    assert any(complaint in p for p in timing.problems()), timing.problems()


def test_usable_short_timings() -> None:
    assert LeaseTiming(3, 2, 0.5).problems() == []
    assert LeaseTiming(2.5, 2, 0.5).lease_seconds == 3  # rounded up, never shorter


def test_lease_spec_per_move() -> None:
    now = datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
    created = lease_spec(None, Move.CREATE, "me", now, DEFAULT)
    assert created == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-30T09:00:05.000000Z",
        "renewTime": "2026-11-30T09:00:05.000000Z",
        "leaseTransitions": 0,
    }
    renewed = lease_spec(record("me", transitions=3), Move.RENEW, "me", now, DEFAULT)
    assert (renewed["acquireTime"], renewed["renewTime"], renewed["leaseTransitions"]) == (
        "2026-11-30T09:00:00.123456Z",
        "2026-11-30T09:00:05.000000Z",
        3,
    )
    taken = lease_spec(record("other", transitions=3), Move.TAKE_OVER, "me", now, DEFAULT)
    assert (taken["holderIdentity"], taken["acquireTime"], taken["leaseTransitions"]) == (
        "me",
        "2026-11-30T09:00:05.000000Z",
        4,
    )
    with pytest.raises(ValueError, match="waiting"):
        lease_spec(record("other"), Move.WAIT, "me", now, DEFAULT)


def test_released_spec_lets_a_standby_take_over_at_once() -> None:
    now = datetime(2026, 11, 30, 9, 0, 9, tzinfo=UTC)
    spec = released_spec(record("me", transitions=2), now)
    assert spec == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": "2026-11-30T09:00:00.123456Z",
        "renewTime": "2026-11-30T09:00:09.000000Z",
        "leaseTransitions": 2,
    }
    released = LeaseRecord("", 1, T0, now, 2, "8")
    assert next_move(released, "standby", observed_at=50.0, now=50.0, timing=DEFAULT) is Move.TAKE_OVER


def test_micro_time_is_utc_with_microseconds() -> None:
    from datetime import timedelta, timezone

    at = datetime(2026, 11, 30, 11, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert micro_time(at) == "2026-11-30T09:00:00.000005Z"
