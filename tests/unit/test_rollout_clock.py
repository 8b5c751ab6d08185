"""When a rollout in progress is looked at again without an event: ``next_check`` as a table, the
back-off it gives while nothing changes, and whole rollouts driven by that clock alone (no
one-second tick): every pause ends and every measurement is taken exactly when due."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from modelops.api.modeldeployment import RolloutPhase
from modelops.core.rollout_clock import next_check, recheck_delay
from tests.unit.rollout_sim import T0, Sim, spec

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("wait_until", "quiet_since", "expected"),
    [
        (None, T0, T0 + 1 * S),  # just changed: look again in a second
        (None, T0 - 0.4 * S, T0 + 1 * S),  # never sooner than a second
        (None, T0 - 5 * S, T0 + 5 * S),  # quiet for 5 s: 5 s more
        (None, T0 - 29 * S, T0 + 29 * S),
        (None, T0 - 600 * S, T0 + 30 * S),  # never later than 30 s
        (None, T0 + 10 * S, T0 + 1 * S),  # a change "in the future" (clock skew): as if just changed
        (T0 + 3 * S, T0 - 600 * S, T0 + 3 * S),  # something due sooner than the re-check: then
        (T0 + 3 * S, T0, T0 + 1 * S),  # the re-check sooner than what is due: then
        (T0 + 3600 * S, T0 - 600 * S, T0 + 30 * S),  # an hour's pause: re-checked every 30 s
        (T0 - 5 * S, T0 - 600 * S, T0),  # already due: now
        (T0, T0 - 600 * S, T0),
    ],
)
def test_next_check(wait_until: datetime | None, quiet_since: datetime, expected: datetime) -> None:
    assert next_check(T0, wait_until, quiet_since) == expected


@pytest.mark.parametrize(
    ("quiet_for", "expected"),
    [(0 * S, 1 * S), (1 * S, 1 * S), (2.5 * S, 2.5 * S), (30 * S, 30 * S), (31 * S, 30 * S), (86400 * S, 30 * S)],
)
def test_recheck_delay_is_the_quiet_time_within_1_and_30_seconds(quiet_for: timedelta, expected: timedelta) -> None:
    assert recheck_delay(quiet_for) == expected


def test_quiet_rechecks_double_up_to_30_seconds() -> None:
    times, now = [], T0
    for _ in range(9):
        now = next_check(now, None, T0)
        times.append((now - T0).total_seconds())
    assert times == [1, 2, 4, 8, 16, 32, 62, 92, 122]


# ----------------------------------------------------------- rollouts driven by the clock alone


class Driven:
    """A Sim reconciled only when the handler's clock says (no event, no tick): after each
    reconcile, time jumps to ``next_check``; a reconcile that changed anything resets the back-off.
    Pods get ready at once, so their events are not needed either."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.quiet_since = sim.now
        self.reconciles: list[datetime] = []

    def run_until(self, done: object, limit: int = 2000) -> None:
        sim = self.sim
        for _ in range(limit):
            before = (sim.status, replace(sim.stable), replace(sim.canary))
            d = sim.step()
            self.reconciles.append(sim.now)
            if (sim.status, sim.stable, sim.canary) != before:
                self.quiet_since = sim.now
            if callable(done) and done(sim):
                return
            sim.now = next_check(sim.now, d.wait_until, self.quiet_since)
        raise AssertionError(f"not done after {limit} reconciles: {sim.status.message}")


def started(steps: list[dict]) -> Driven:
    sim = Sim(spec(steps))
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    sim.target = "churn-v2"
    return Driven(sim)


def test_a_timed_pause_ends_exactly_on_time_after_backing_off() -> None:
    driven = started([{"setWeight": 25}, {"pause": {"duration": "10m"}}, {"pause": {}}])
    driven.run_until(lambda s: s.status.current_step_index == 1 and s.status.pause_started_at is not None)
    pause_start = driven.sim.status.pause_started_at
    assert pause_start is not None
    count = len(driven.reconciles)
    driven.run_until(lambda s: s.status.current_step_index == 2)
    assert driven.reconciles[-1] == pause_start + timedelta(minutes=10)
    during = driven.reconciles[count:]
    gaps = [(b - a).total_seconds() for a, b in zip([pause_start, *during], during, strict=False)]
    assert max(gaps) == 30
    assert len(during) <= 6 + 600 // 30  # a few quick looks, then one every 30 s; not 600


def test_analysis_measurements_are_taken_exactly_at_each_interval() -> None:
    metric = {"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "45s", "count": 4}
    driven = started([{"setWeight": 25}, {"analysis": {"metrics": [metric]}}, {"pause": {}}])
    driven.run_until(lambda s: s.status.current_step_index == 2)
    run = driven.sim.status.analysis_runs[-1]
    assert run.phase == "Successful"
    assert [m.time for m in run.measurements] == [run.started_at + k * timedelta(seconds=45) for k in (1, 2, 3, 4)]


def test_a_canary_that_never_gets_ready_is_rolled_back_exactly_at_the_deadline() -> None:
    driven = started([{"setWeight": 25}, {"pause": {}}])
    driven.sim.spec = spec([{"setWeight": 25}, {"pause": {}}], progressDeadline="5m")
    driven.sim.auto_ready = False
    driven.run_until(lambda s: s.status.canary_version is not None)
    began = driven.sim.status.step_started_at
    assert began is not None
    driven.run_until(lambda s: s.status.phase == RolloutPhase.ROLLED_BACK)
    assert driven.reconciles[-1] == began + timedelta(minutes=5)


# ------------------------------------------------------- the handler's memory of when to look next


def test_clocks_follow_each_reconcile_outcome() -> None:
    from modelops.handlers.modeldeployment import Clocks, Reconciled

    clocks, key = Clocks(), ("default", "churn")
    assert clocks.due(key) is None  # never reconciled by this process: the clock looks at once
    clocks.record(key, Reconciled(T0, active=True, changed=True, wait_until=T0 + 3600 * S))
    assert clocks.due(key) == T0 + 1 * S
    clocks.record(key, Reconciled(T0 + 1 * S, active=True, changed=False, wait_until=T0 + 3600 * S))
    assert clocks.due(key) == T0 + 2 * S
    clocks.record(key, Reconciled(T0 + 300 * S, active=True, changed=False, wait_until=T0 + 3600 * S))
    assert clocks.due(key) == T0 + 330 * S
    clocks.record(key, Reconciled(T0 + 3590 * S, active=True, changed=False, wait_until=T0 + 3600 * S))
    assert clocks.due(key) == T0 + 3600 * S  # the pause end, not a re-check after it
    clocks.record(key, Reconciled(T0 + 3600 * S, active=False, changed=True))
    assert clocks.due(key) is None  # no rollout underway: events only
    clocks.record(key, Reconciled(T0 + 4000 * S, active=True, changed=True))
    assert clocks.due(key) == T0 + 4001 * S
    clocks.forget(key)
    assert clocks.due(key) is None
