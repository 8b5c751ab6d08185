"""What a DriftMonitor does after a check: debounce and cooldown as a pure state machine.

``decide(policy, state, drifted, now)`` returns the action (none/alert/retrain), a
condition-style reason and the new counters. No clock is read: ``now`` is passed in, so an
operator restarted at any moment resumes from the counters it stored in status.

Rules, in order:
0. A check that could not judge (``hold``: too few labels) changes nothing: ``Inconclusive``.
1. A clean check resets the run of drifted checks: ``NoDrift``.
2. Fewer than ``consecutiveChecks`` drifted checks in a row: ``Debouncing``.
3. ``action: none``: ``ActionDisabled`` (the counter still shows the drift).
4. Within ``cooldown`` of the last action (or the clock went backwards): ``CoolingDown``.
5. ``retrain`` while a retraining Job is still active: ``RetrainInProgress`` (never two at once).
6. Otherwise the action fires (``AlertRaised`` / ``RetrainTriggered``) and the cooldown restarts.
   The run counter is not reset: drift that persists past the cooldown fires again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from modelops.api.driftmonitor import Policy
from modelops.drift.durations import parse_duration

Action = Literal["none", "alert", "retrain"]
DecisionReason = Literal[
    "NoDrift",
    "Inconclusive",
    "Debouncing",
    "ActionDisabled",
    "CoolingDown",
    "RetrainInProgress",
    "AlertRaised",
    "RetrainTriggered",
]


@dataclass(frozen=True)
class PolicyState:
    """The counters kept in DriftMonitor status."""

    consecutive_drifted: int = 0
    last_action_time: datetime | None = None


@dataclass(frozen=True)
class PolicyDecision:
    action: Action
    reason: DecisionReason
    message: str
    state: PolicyState

    @property
    def fired(self) -> bool:
        return self.action != "none"


def cooldown_of(policy: Policy) -> timedelta:
    return parse_duration(policy.cooldown)


def decide(
    policy: Policy,
    state: PolicyState,
    drifted: bool,
    now: datetime,
    *,
    job_active: bool = False,
    signal: str = "dataset drift",
    hold: bool = False,
) -> PolicyDecision:
    """The next action after one check; see the module docstring for the rules.

    ``signal`` names what was bad in the messages ("dataset drift", "performance degradation");
    ``hold`` is a check that could not judge (too few labels): it neither extends nor resets the
    run of bad checks.
    """
    if not drifted and hold:
        return PolicyDecision("none", "Inconclusive", "inconclusive check; the run of bad checks is held", state)
    if not drifted:
        return PolicyDecision("none", "NoDrift", "no dataset drift", PolicyState(0, state.last_action_time))
    run = state.consecutive_drifted + 1
    counted = PolicyState(run, state.last_action_time)
    needed = policy.consecutive_checks
    if run < needed:
        return PolicyDecision("none", "Debouncing", f"{run}/{needed} bad checks in a row ({signal})", counted)
    if policy.action == "none":
        return PolicyDecision("none", "ActionDisabled", f"{signal} for {run} checks; policy action is none", counted)
    if state.last_action_time is not None:
        cooldown = cooldown_of(policy)
        if now < state.last_action_time:
            return PolicyDecision(
                "none", "CoolingDown", "last action is in the future (clock skew); holding the action", counted
            )
        until = state.last_action_time + cooldown
        if now < until:
            return PolicyDecision(
                "none",
                "CoolingDown",
                f"cooling down until {until.isoformat()} ({policy.cooldown} after the last action)",
                counted,
            )
    if policy.action == "retrain" and job_active:
        return PolicyDecision("none", "RetrainInProgress", "a retraining Job is still running", counted)
    fired = PolicyState(run, now)
    if policy.action == "alert":
        return PolicyDecision("alert", "AlertRaised", f"{signal} in {run} consecutive checks", fired)
    return PolicyDecision("retrain", "RetrainTriggered", f"{signal} in {run} consecutive checks; retraining", fired)
