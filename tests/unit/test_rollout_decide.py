"""The planner's transitions, walked through the tiny cluster stand-in of rollout_sim: first
deploy, canary steps with their replica counts, pauses and their clocks, analysis verdicts,
control requests, abort and its memory, promotion and the resumable hand-over."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from modelops.api.modeldeployment import MetricResult, ModelDeploymentSpec, RolloutPhase
from modelops.core.rollout import Blocker, RolloutObservations, TrackPlan, decide, serving
from modelops.core.rollout_control import previous_stable
from modelops.core.rollout_view import parse_rollout
from modelops.core.version_selection import Selection
from tests.unit.rollout_sim import REV, T0, Sim, spec

STEPS = [{"setWeight": 25}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}]


def cond(sim: Sim, type_: str):
    return next(c for c in sim.status.conditions if c.type == type_)


def deployed(steps=STEPS, replicas: int = 4, **canary) -> Sim:
    sim = Sim(spec(steps, replicas=replicas, **canary))
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    return sim


def reasons(d) -> list[str]:
    return [e.reason for e in d.events]


# ------------------------------------------------------------------------- first deploy


def test_first_deploy_goes_straight_to_100_percent():
    sim = Sim(spec(STEPS))
    d = sim.step()
    assert d.stable == TrackPlan(4, "churn-v1")
    assert d.canary is None
    assert sim.status.stable_version == "churn-v1"
    assert sim.status.canary_version is None
    assert sim.status.phase == RolloutPhase.PROGRESSING
    assert "Deploying" in reasons(d)
    d = sim.step()
    assert sim.status.phase == RolloutPhase.HEALTHY
    assert reasons(d) == ["Available"]
    assert (cond(sim, "Ready").status, cond(sim, "Reconciling").status, cond(sim, "Stalled").status) == (
        "True",
        "False",
        "False",
    )
    assert cond(sim, "Available").status == "True"
    assert all(c.observed_generation == 1 for c in sim.status.conditions)
    assert sim.status.tracks.stable.ready_replicas == 4


def test_reconciling_a_healthy_deployment_changes_nothing():
    sim = deployed()
    d = sim.decide()
    assert not d.changed
    assert d.events == ()
    assert d.stable == TrackPlan(4, "churn-v1")
    assert d.canary is None


@pytest.mark.parametrize(
    ("reason", "stalled", "reconciling"),
    [("NotFound", "True", "False"), ("NotVerified", "True", "False"), ("VerificationPending", "False", "True")],
)
def test_nothing_is_deployed_without_an_eligible_version(reason, stalled, reconciling):
    sim = Sim(spec(STEPS), target=None)
    obs = RolloutObservations(generation=1, selection=Selection(None, reason, f"why: {reason}"), server_revision=REV)
    d = decide(sim.spec, sim.status, obs, T0)
    assert d.stable is None
    assert d.canary is None
    assert d.status.phase == RolloutPhase.PENDING
    ready = next(c for c in d.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason, ready.message) == ("False", reason, f"why: {reason}")
    assert next(c for c in d.status.conditions if c.type == "Stalled").status == stalled
    assert next(c for c in d.status.conditions if c.type == "Reconciling").status == reconciling
    assert [e.type for e in d.events] == (["Warning"] if stalled == "True" else [])


def test_first_deploy_waits_for_a_missing_secret():
    sim = Sim(spec(STEPS))
    obs = replace(sim.observations(), blockers=(Blocker("SecretNotFound", "Secret creds not found"),))
    d = decide(sim.spec, sim.status, obs, T0)
    assert d.stable is None
    assert d.status.phase == RolloutPhase.PENDING
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "SecretNotFound")]


# ------------------------------------------------------------------------------ steps


def test_canary_steps_replicas_and_weights_per_step():
    """4 replicas, maxSurge 25% = 1 pod: the weight counts only once the pods are ready and the
    stable has made room; the total never exceeds 5 pods."""
    sim = deployed()
    sim.target = "churn-v2"
    trace = []
    for _ in range(40):
        sim.step()
        trace.append(
            (sim.status.current_step_index, sim.status.canary_weight, sim.stable.replicas, sim.canary.replicas)
        )
        assert sim.stable.replicas + sim.canary.replicas <= 5
        if sim.status.phase == RolloutPhase.PAUSED and sim.status.current_step_index == 3:
            break
        sim.now += timedelta(seconds=10)
    assert trace == [
        (0, 0, 4, 1),  # canary pod created inside the budget, stable untouched
        (0, 0, 3, 1),  # canary pod ready: stable gives one up
        (1, 25, 3, 1),  # 25% reached: pause 30s starts
        (1, 25, 3, 1),
        (1, 25, 3, 1),
        (2, 25, 3, 2),  # pause over: second canary pod
        (2, 25, 2, 2),
        (3, 50, 2, 2),  # 50% reached: indefinite pause
    ]
    assert sim.status.phase == RolloutPhase.PAUSED
    assert cond(sim, "Ready").reason == "PausedAtStep"


def test_weight_does_not_move_to_a_canary_that_is_not_ready():
    sim = deployed()
    sim.auto_ready = False
    sim.target = "churn-v2"
    for _ in range(5):
        sim.step()
        sim.now += timedelta(seconds=5)
    assert sim.status.canary_weight == 0
    assert sim.status.current_step_index == 0
    assert (sim.stable.replicas, sim.canary.replicas) == (4, 1)
    assert "0/1 canary pods ready" in sim.status.message


def test_progress_deadline_aborts_a_canary_that_never_gets_ready():
    sim = deployed(progressDeadline="1m")
    sim.auto_ready = False
    sim.target = "churn-v2"
    sim.step()
    sim.now += timedelta(seconds=61)
    d = sim.step()
    assert sim.status.phase == RolloutPhase.ROLLED_BACK
    assert sim.status.failed_version == "churn-v2"
    assert (d.stable, d.canary) == (TrackPlan(4, "churn-v1"), TrackPlan(0, None))
    assert cond(sim, "Stalled").reason == "ProgressDeadlineExceeded"
    assert "0/1 canary pods ready (stable 4, canary 1 pods) after 1m" in cond(sim, "Stalled").message


def test_pause_clock_lives_in_status_and_is_not_restarted():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    assert sim.status.current_step_index == 1
    started = sim.status.pause_started_at
    assert started is not None
    sim.now = started + timedelta(seconds=29)
    d = sim.step()
    assert sim.status.pause_started_at == started
    assert d.wait_until == started + timedelta(seconds=30)
    sim.now = started + timedelta(seconds=30)
    sim.step()
    assert sim.status.current_step_index == 2
    assert sim.status.pause_started_at is None


def test_indefinite_pause_waits_for_promote_of_that_step_only():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run()
    assert sim.status.current_step_index == 3
    sim.status = sim.status.model_copy(update={"promote_step": 1})  # stale: the user saw step 1
    d = sim.step()
    assert sim.status.current_step_index == 3
    assert sim.status.promote_step is None
    assert "StepPromoted" not in reasons(d)
    sim.status = sim.status.model_copy(update={"promote_step": 3})
    d = sim.step()
    assert "StepPromoted" in reasons(d)
    assert sim.status.current_step_index == 4
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    assert (sim.status.stable_version, sim.status.canary_version) == ("churn-v2", None)
    assert (sim.stable.version, sim.stable.replicas, sim.canary.replicas) == ("churn-v2", 4, 0)
    assert [h.event for h in sim.status.history][-3:] == ["RolloutStarted", "Promoting", "Promoted"]


def test_promote_full_skips_the_remaining_steps():
    sim = deployed()
    sim.target = "churn-v2"
    sim.step()
    sim.status = sim.status.model_copy(update={"promote_full": True})
    d = sim.step()
    assert "PromotedFull" in reasons(d)
    assert sim.status.current_step_index == 4
    assert sim.status.promote_full is False
    sim.run()
    assert sim.status.stable_version == "churn-v2"


@pytest.mark.parametrize("field", ["paused_by_user"])
def test_user_pause_holds_and_resume_continues(field):
    sim = deployed()
    sim.target = "churn-v2"
    sim.status = sim.status.model_copy(update={field: True})
    sim.run()
    assert sim.status.canary_version is None
    assert sim.status.phase == RolloutPhase.PAUSED
    assert cond(sim, "Ready").reason == "PausedByUser"
    sim.status = sim.status.model_copy(update={field: False})
    sim.step()
    assert sim.status.canary_version == "churn-v2"


def test_spec_paused_holds_a_running_canary_at_its_weight():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    assert sim.status.current_step_index == 1
    sim.spec = sim.spec.model_copy(update={"paused": True})
    sim.now += timedelta(minutes=5)
    sim.run(follow_clock=False)
    assert (sim.status.current_step_index, sim.status.canary_weight) == (1, 25)
    assert sim.status.phase == RolloutPhase.PAUSED
    assert cond(sim, "Ready").reason == "SpecPaused"
    assert cond(sim, "Stalled").status == "False"


# ------------------------------------------------------------------------------ abort


def test_abort_returns_everything_to_stable_and_remembers_the_version():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    sim.status = sim.status.model_copy(update={"abort": True})
    d = sim.step()
    assert (d.stable, d.canary) == (TrackPlan(4, "churn-v1"), TrackPlan(0, None))
    assert sim.status.canary_weight == 0
    assert sim.status.canary_version is None
    assert sim.status.failed_version == "churn-v2"
    assert sim.status.abort is False
    assert sim.status.phase == RolloutPhase.ROLLED_BACK
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "RolledBack")]
    assert cond(sim, "Stalled").reason == "Aborted"
    sim.now += timedelta(hours=1)
    sim.run()
    assert sim.status.canary_version is None  # not retried
    assert sim.status.phase == RolloutPhase.ROLLED_BACK
    assert "not retried" in sim.status.message
    assert not sim.decide().changed


def test_retry_and_spec_change_allow_the_failed_version_again():
    sim = deployed()
    sim.target = "churn-v2"
    sim.step()
    sim.status = sim.status.model_copy(update={"abort": True})
    sim.run()
    sim.status = sim.status.model_copy(update={"failed_version": None})  # `modelops rollout retry`
    sim.step()
    assert sim.status.canary_version == "churn-v2"
    sim.status = sim.status.model_copy(update={"abort": True})
    sim.run()
    assert sim.status.failed_version == "churn-v2"
    sim.generation = 2  # any spec change
    d = sim.step()
    assert "RetryAllowed" in reasons(d)
    assert sim.status.canary_version == "churn-v2"


def test_a_rollback_stays_on_record_when_no_version_is_eligible_any_more():
    sim = deployed()
    sim.target = "churn-v2"
    sim.step()
    sim.status = sim.status.model_copy(update={"abort": True})
    sim.run()
    sim.target = None  # churn-v2 archived, nothing else in the stage the deployment asks for
    sim.run()
    assert (sim.status.phase, cond(sim, "Stalled").reason) == (RolloutPhase.ROLLED_BACK, "Aborted")
    assert sim.status.message == (
        "canary churn-v2 aborted by request; 100% back on churn-v1; churn-v1 serves 100%, no version to roll "
        "out: missing; `modelops rollout retry` or a spec change clears this"
    )


@pytest.mark.parametrize(
    ("acknowledge", "phase", "stalled"),
    [
        (None, RolloutPhase.ROLLED_BACK, "True"),  # the registry archived churn-v2: still on record
        ("retry", RolloutPhase.HEALTHY, "False"),  # `modelops rollout retry` clears it
        ("spec", RolloutPhase.HEALTHY, "False"),  # so does any spec change
    ],
)
def test_a_rollback_stays_on_record_when_the_target_goes_back_to_the_stable(acknowledge, phase, stalled):
    sim = deployed()
    sim.target = "churn-v2"
    sim.step()
    sim.status = sim.status.model_copy(update={"abort": True})
    sim.run()
    assert (sim.status.phase, cond(sim, "Stalled").reason) == (RolloutPhase.ROLLED_BACK, "Aborted")
    sim.target = "churn-v1"  # the registry archived churn-v2 and restored churn-v1 to Production
    if acknowledge == "retry":
        sim.status = sim.status.model_copy(update={"failed_version": None})
    elif acknowledge == "spec":
        sim.generation = 2
    sim.now += timedelta(minutes=1)
    sim.run()
    assert sim.status.phase == phase
    assert (sim.status.stable_version, sim.status.canary_version) == ("churn-v1", None)
    assert cond(sim, "Stalled").status == stalled
    assert cond(sim, "Ready").status == ("False" if stalled == "True" else "True")
    if acknowledge is None:
        assert cond(sim, "Stalled").reason == "Aborted"
        assert sim.status.message == (
            "canary churn-v2 aborted by request; 100% back on churn-v1; the target is churn-v1 again, which serves "
            "100%; `modelops rollout retry` or a spec change clears this"
        )
        assert sim.status.failed_version == "churn-v2"
        assert not sim.decide().changed
        assert sim.decide().events == ()


def test_analysis_failure_rolls_back_naming_metric_value_and_threshold():
    steps = [
        {"setWeight": 50},
        {"analysis": {"metrics": [{"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "30s"}]}},
    ]
    sim = deployed(steps)
    sim.measurer = lambda name, now: MetricResult(
        name=name, value=0.12, phase="Failed", message="errors: 0.12 > max 0.05", time=now
    )
    sim.target = "churn-v2"
    sim.run()
    assert sim.status.phase == RolloutPhase.ROLLED_BACK
    assert cond(sim, "Stalled").reason == "AnalysisFailed"
    assert "errors: 0.12 > max 0.05" in cond(sim, "Stalled").message
    run = sim.status.analysis_runs[-1]
    assert (run.phase, run.version, [m.value for m in run.measurements]) == ("Failed", "churn-v2", [0.12])
    assert run.started_at + timedelta(seconds=30) == run.measurements[0].time  # measured one interval in
    assert (sim.stable.replicas, sim.canary.replicas) == (4, 0)


def test_inconclusive_analysis_pauses_and_promote_accepts_it():
    steps = [
        {"setWeight": 20},
        {"analysis": {"metrics": [{"name": "shift", "kind": "predictionShift", "max": 0.2, "inconclusiveLimit": 0}]}},
    ]
    sim = deployed(steps, replicas=5)
    sim.measurer = lambda name, now: MetricResult(name=name, phase="Inconclusive", message="3 < 50 samples", time=now)
    sim.target = "churn-v2"
    sim.run()
    assert sim.status.phase == RolloutPhase.PAUSED
    assert cond(sim, "Ready").reason == "AnalysisInconclusive"
    assert len(sim.status.analysis_runs[-1].measurements) == 1
    sim.now += timedelta(hours=1)
    assert sim.decide().measure == ()  # no more measurements once inconclusive
    sim.status = sim.status.model_copy(update={"promote_step": 1})
    sim.run()
    assert sim.status.stable_version == "churn-v2"


def test_analysis_clock_survives_a_restart():
    steps = [
        {"analysis": {"metrics": [{"name": "err", "kind": "errorRate", "max": 0.1, "interval": "1m", "count": 3}]}}
    ]
    sim = deployed(steps)
    sim.target = "churn-v2"
    sim.step()
    run = sim.status.analysis_runs[-1]
    sim.now = run.started_at + timedelta(seconds=59)
    assert sim.decide().measure == ()
    sim.now = run.started_at + timedelta(seconds=60)
    assert sim.decide().measure == ("err",)
    sim.step()
    sim.now += timedelta(seconds=30)  # a "restarted operator" re-decides from status: nothing due
    assert sim.decide().measure == ()
    assert sim.status.analysis_runs[-1].started_at == run.started_at


# ---------------------------------------------------------------------- what starts a canary


def test_replica_change_is_applied_in_place_without_a_canary():
    sim = deployed()
    sim.spec = sim.spec.model_copy(update={"replicas": 6})
    sim.generation = 2
    d = sim.step()
    assert d.stable == TrackPlan(6, "churn-v1")
    assert sim.status.canary_version is None
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY


def unobserved(sim: Sim, track: str, ready: int = 0) -> RolloutObservations:
    """The observations right after a write to ``track``'s Deployment, before its controller saw it."""
    obs = sim.observations()
    live = getattr(obs, track)
    return replace(obs, **{track: replace(live, ready=ready, updated=False, observed=False)})


def test_a_scale_the_controller_has_not_observed_yet_keeps_the_ready_count_reported():
    sim = deployed()
    sim.spec = sim.spec.model_copy(update={"replicas": 3})
    sim.generation = 2
    assert sim.step().stable == TrackPlan(3, "churn-v1")  # 4 -> 3 written
    d = decide(sim.spec, sim.status, unobserved(sim, "stable"), sim.now)
    assert d.stable == TrackPlan(3, "churn-v1")
    assert d.status.tracks.stable.ready_replicas == 3  # not 0: no pod changed
    available = next(c for c in d.status.conditions if c.type == "Available")
    assert (available.status, available.message) == ("True", "3/3 pods ready")
    # once observed, what the controller says counts, a drop included
    observed = replace(sim.observations(), stable=replace(sim.observations().stable, ready=1))
    assert decide(sim.spec, sim.status, observed, sim.now).status.tracks.stable.ready_replicas == 1


def test_a_canary_step_not_yet_observed_keeps_both_ready_counts_and_does_not_advance():
    sim = deployed([{"setWeight": 25}, {"setWeight": 50}, {"pause": {}}])
    sim.target = "churn-v2"
    sim.run()
    assert (sim.status.current_step_index, sim.stable.replicas, sim.canary.replicas) == (2, 2, 2)
    before = sim.status
    for track in ("stable", "canary"):
        d = decide(sim.spec, before, unobserved(sim, track), sim.now)
        assert d.status.tracks.stable.ready_replicas == 2
        assert d.status.tracks.canary.ready_replicas == 2
        assert d.status.current_step_index == 2
    # a canary whose new template is not observed yet counts 0, whatever was reported before
    sim.target = "churn-v3"
    d = sim.decide()
    assert d.status.canary_version == "churn-v3"
    sim.apply(d)
    d = decide(sim.spec, sim.status, unobserved(sim, "canary", ready=0), sim.now)
    assert d.status.tracks.canary.ready_replicas == 0
    assert d.status.canary_weight == 0


def test_server_change_rolls_out_by_canary_with_the_same_version():
    sim = deployed()
    sim.revision = "rev2"
    sim.generation = 2
    d = sim.step()
    assert sim.status.canary_version == "churn-v1"
    assert d.stable == TrackPlan(4, None)  # the old server's template is left alone, only scaled
    assert d.canary == TrackPlan(1, "churn-v1")
    assert "new server settings" in d.events[0].message


def test_a_newer_target_supersedes_the_running_canary():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    sim.target = "churn-v3"
    d = sim.step()
    assert "CanarySuperseded" in reasons(d)
    assert sim.status.canary_version == "churn-v3"
    assert sim.status.current_step_index == 0


def test_going_back_to_the_stable_version_cancels_the_canary():
    sim = deployed()
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    sim.target = "churn-v1"
    d = sim.step()
    assert "RolloutCancelled" in reasons(d)
    assert sim.status.failed_version is None
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    assert (sim.stable.replicas, sim.canary.replicas) == (4, 0)


# ---------------------------------------------------------------------- promotion, resume


def test_promotion_hand_over_never_drops_ready_capacity():
    sim = deployed([{"setWeight": 50}])
    sim.target = "churn-v2"
    ready_before = 4
    for _ in range(60):
        sim.step()
        ready = sim.stable.ready + sim.canary.ready
        assert ready >= min(ready_before, 4)
        ready_before = ready
        if sim.status.phase == RolloutPhase.HEALTHY:
            break
    assert sim.status.stable_version == "churn-v2"


def test_killed_between_stable_rewrite_and_status_write_resumes_the_hand_over():
    sim = deployed([{"setWeight": 50}])
    sim.target = "churn-v2"
    for _ in range(20):
        before = sim.status
        d = sim.decide()
        if "Promoting" in reasons(d):
            break
        sim.apply(d)
        sim.settle()
    sim.apply(d)  # the stable's template is rewritten ...
    sim.status = before  # ... but the status write never landed
    d = sim.decide()
    assert "Promoting" not in reasons(d)  # not promoted twice
    assert d.stable is not None
    assert d.stable.version == "churn-v2"
    assert d.status.stable_version == "churn-v2"
    sim.apply(d)
    sim.settle()
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    assert [h.event for h in sim.status.history].count("Promoted") == 1
    # the Promoting entry lost with the status write is recorded on resume (no second Event)
    changes = [(h.event, h.from_value, h.to_value) for h in sim.status.history if h.to_value]
    assert changes[-2:] == [("Promoting", "churn-v1", "churn-v2"), ("Promoted", "churn-v1", "churn-v2")]


def test_history_names_each_stable_version_and_the_one_it_replaced():
    sim = deployed([{"setWeight": 50}])
    for target in ("churn-v2", "churn-v3"):
        sim.target = target
        sim.run()
    changes = [(h.event, h.from_value, h.to_value) for h in sim.status.history if h.to_value]
    assert changes == [
        ("Deploying", None, "churn-v1"),
        ("Promoting", "churn-v1", "churn-v2"),
        ("Promoted", "churn-v1", "churn-v2"),
        ("Promoting", "churn-v2", "churn-v3"),
        ("Promoted", "churn-v2", "churn-v3"),
    ]
    body = {
        "metadata": {"name": "churn", "namespace": "default", "generation": 1},
        "spec": {"model": {"versionRef": "churn-v3"}, "replicas": 4},
        "status": sim.status.model_dump(by_alias=True, mode="json"),
    }
    assert previous_stable(parse_rollout(body), []) == "churn-v2"  # `modelops rollout undo` needs no registry


def test_abort_during_hand_over_is_ignored():
    sim = deployed([{"setWeight": 50}])
    sim.target = "churn-v2"
    while sim.status.stable_version != "churn-v2":
        sim.step()
    sim.status = sim.status.model_copy(update={"abort": True})
    d = sim.step()
    assert "AbortIgnored" in reasons(d)
    sim.run()
    assert (sim.status.stable_version, sim.status.failed_version) == ("churn-v2", None)


def test_gateway_weights_follow_ready_pods_and_stable_stays_full_with_budget():
    sim = deployed(
        [{"setWeight": 30}, {"pause": {}}],
        replicas=4,
        maxSurge="100%",
        trafficRouting={"gatewayApi": {"httpRoute": "churn", "parentRefs": [{"name": "gw"}]}},
    )
    sim.auto_ready = False
    sim.target = "churn-v2"
    d = sim.step()
    assert d.route_weight == 0
    assert (d.stable.replicas, d.canary.replicas) == (4, 2)
    sim.canary.ready = 2
    d = sim.step()
    assert d.route_weight == 30
    assert sim.status.canary_weight == 30
    assert sim.stable.replicas == 4


def test_serving_records_weights_per_track():
    sim = deployed()
    assert serving(sim.status) == [("churn-v1", "stable", 100)]
    sim.target = "churn-v2"
    sim.run(follow_clock=False)
    assert serving(sim.status) == [("churn-v1", "stable", 75), ("churn-v2", "canary", 25)]


def test_no_canary_strategy_replaces_through_the_hand_over():
    sim = Sim(ModelDeploymentSpec.model_validate({"model": {"versionRef": "churn-v1"}, "replicas": 2}))
    sim.run()
    sim.target = "churn-v2"
    sim.run()
    assert sim.status.stable_version == "churn-v2"
    assert sim.status.phase == RolloutPhase.HEALTHY


def test_a_deleted_stable_deployment_is_recreated():
    sim = deployed()
    sim.stable = type(sim.stable)()  # someone deleted churn-stable
    d = sim.step()
    assert d.stable == TrackPlan(4, "churn-v1")
    assert sim.status.phase == RolloutPhase.PROGRESSING
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
