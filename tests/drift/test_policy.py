"""Debounce and cooldown as a pure state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from modelops.api.driftmonitor import Policy
from modelops.core.drift_policy import PolicyState, decide

T0 = datetime(2026, 11, 26, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("policy", "state", "drifted", "now", "job_active", "action", "reason", "run", "last"),
    [
        (Policy(), PolicyState(3, T0), False, T0, False, "none", "NoDrift", 0, T0),
        (Policy(consecutive_checks=3), PolicyState(0), True, T0, False, "none", "Debouncing", 1, None),
        (Policy(consecutive_checks=3), PolicyState(1), True, T0, False, "none", "Debouncing", 2, None),
        (Policy(consecutive_checks=3), PolicyState(2), True, T0, False, "alert", "AlertRaised", 3, T0),
        (Policy(action="none"), PolicyState(0), True, T0, False, "none", "ActionDisabled", 1, None),
        (Policy(cooldown="6h"), PolicyState(1, T0), True, T0 + 5 * H, False, "none", "CoolingDown", 2, T0),
        (Policy(cooldown="6h"), PolicyState(1, T0), True, T0 + 6 * H, False, "alert", "AlertRaised", 2, T0 + 6 * H),
        (Policy(), PolicyState(1, T0 + H), True, T0, False, "none", "CoolingDown", 2, T0 + H),  # clock skew
        (Policy(action="retrain"), PolicyState(0), True, T0, True, "none", "RetrainInProgress", 1, None),
        (Policy(action="retrain"), PolicyState(0), True, T0, False, "retrain", "RetrainTriggered", 1, T0),
        (Policy(action="alert"), PolicyState(0), True, T0, True, "alert", "AlertRaised", 1, T0),
    ],
)
def test_decision_table(policy, state, drifted, now, job_active, action, reason, run, last):
    decision = decide(policy, state, drifted, now, job_active=job_active)
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.state == PolicyState(run, last)
    assert decision.fired is (action != "none")
    assert decision.message


@settings(max_examples=200, deadline=None)
@given(
    n=hst.integers(1, 5),
    cooldown_minutes=hst.integers(1, 600),
    action=hst.sampled_from(["alert", "retrain"]),
    checks=hst.lists(hst.tuples(hst.booleans(), hst.integers(1, 240)), min_size=1, max_size=60),
)
def test_properties_over_a_run_of_checks(n, cooldown_minutes, action, checks):
    """Fires only after n drifted checks in a row; never twice within the cooldown; and fires
    whenever the run is long enough and the cooldown has passed."""
    policy = Policy(action=action, consecutive_checks=n, cooldown=f"{cooldown_minutes}m")
    cooldown = timedelta(minutes=cooldown_minutes)
    state = PolicyState()
    now = T0
    run = 0
    last_fire: datetime | None = None
    for drifted, gap in checks:
        now += timedelta(minutes=gap)
        decision = decide(policy, state, drifted, now)
        run = run + 1 if drifted else 0
        assert decision.state.consecutive_drifted == run
        due = drifted and run >= n and (last_fire is None or now - last_fire >= cooldown)
        assert decision.fired is due
        if decision.fired:
            assert decision.action == action
            last_fire = now
        assert decision.state.last_action_time == last_fire
        state = decision.state
