"""Properties of the planner over random rollouts (hypothesis): whatever the steps, the routing,
the budget, flaky readiness, analysis verdicts and control requests,

- the canary's weight never decreases, except when the canary is rolled back;
- an abort always returns 100% to the stable at full size;
- the replica budget (replicas + maxSurge) holds in every decision;
- a finished promotion makes the canary the new stable;
- the same inputs give the same decision.
"""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelops.api.modeldeployment import MetricResult, RolloutPhase
from modelops.core.rollout_math import surge_pods
from tests.unit.rollout_sim import Sim, spec

PHASES = ["Successful", "Successful", "Successful", "Failed", "Inconclusive", "Error"]


@st.composite
def rollouts(draw):
    weights = sorted(draw(st.lists(st.integers(0, 100), min_size=0, max_size=4)))
    steps: list[dict] = [{"setWeight": w} for w in weights]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["pause", "timed", "analysis"]))
        step = (
            {"pause": {}}
            if kind == "pause"
            else {"pause": {"duration": "20s"}}
            if kind == "timed"
            else {
                "analysis": {"metrics": [{"name": "m", "kind": "errorRate", "max": 0.1, "count": 2, "interval": "10s"}]}
            }
        )
        steps.insert(draw(st.integers(0, len(steps))), step)
    if not steps:
        steps = [{"setWeight": 50}]
    canary: dict = {"maxSurge": draw(st.sampled_from([1, 2, "25%", "50%", "100%"]))}
    if draw(st.booleans()):
        canary["trafficRouting"] = {"gatewayApi": {"httpRoute": "r", "parentRefs": [{"name": "gw"}]}}
    return spec(steps, replicas=draw(st.integers(0, 8)), progressDeadline="2m", **canary)


@settings(max_examples=150, deadline=None)
@given(
    md=rollouts(),
    seed=st.integers(0, 2**32 - 1),
    controls=st.lists(st.sampled_from(["abort", "promote", "promoteFull", "pause", "resume", None]), max_size=40),
)
def test_rollout_invariants(md, seed, controls):
    rng = random.Random(seed)
    sim = Sim(md)
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    sim.auto_ready = False
    sim.measurer = lambda name, now: MetricResult(name=name, value=0.0, phase=rng.choice(PHASES), time=now)
    sim.target = "churn-v2"
    replicas = md.replicas
    budget = replicas + surge_pods(md.strategy.canary.max_surge, replicas)
    promoted = False
    for i in range(120):
        control = controls[i] if i < len(controls) else None
        updates = {
            "abort": {"abort": True},
            "promote": {"promote_step": sim.status.current_step_index},
            "promoteFull": {"promote_full": True},
            "pause": {"paused_by_user": True},
            "resume": {"paused_by_user": False},
        }.get(control or "", {})
        if updates:
            sim.status = sim.status.model_copy(update=updates)
        before = sim.status
        d1, d2 = sim.decide(), sim.decide()
        assert d1 == d2  # same inputs, same decision
        d = sim.step()
        names = {e.reason for e in d.events}
        plans = [p.replicas for p in (d.stable, d.canary) if p is not None]
        assert sum(plans) <= max(budget, replicas)
        if "RolledBack" in names:
            assert d.stable is not None
            assert d.stable.replicas == replicas
            assert d.canary is None or d.canary.replicas == 0  # None: no canary pod was ever made
            assert sim.status.canary_weight == 0
            assert d.route_weight in (None, 0)
            assert sim.status.failed_version == "churn-v2"
        elif "Promoted" in names:
            assert sim.status.stable_version == "churn-v2"
            assert sim.status.canary_version is None
            promoted = True
        else:
            assert sim.status.canary_weight >= before.canary_weight
        # readiness is flaky: pods of each track become ready, or not, at random
        for track in (sim.stable, sim.canary):
            track.ready = rng.randint(track.ready, track.replicas) if track.replicas else 0
        sim.now += timedelta(seconds=rng.choice([1, 5, 15]))
        if promoted or sim.status.failed_version:
            break
    if promoted:
        assert sim.stable.version == "churn-v2"


@settings(max_examples=100, deadline=None)
@given(md=rollouts())
def test_a_good_version_always_finishes_as_the_new_stable(md):
    """Ready pods and passing analysis: every rollout ends Healthy on the new version (indefinite
    pauses promoted as a user would), with the old stable scaled away."""
    sim = Sim(md)
    sim.run()
    sim.target = "churn-v2"
    for _ in range(60):
        sim.run(max_steps=400)
        if sim.status.phase == RolloutPhase.HEALTHY and sim.status.stable_version == "churn-v2":
            break
        sim.status = sim.status.model_copy(update={"promote_step": sim.status.current_step_index})
    assert (sim.status.phase, sim.status.stable_version, sim.status.canary_version) == (
        RolloutPhase.HEALTHY,
        "churn-v2",
        None,
    )
    assert (sim.stable.version, sim.stable.replicas, sim.canary.replicas) == ("churn-v2", md.replicas, 0)
