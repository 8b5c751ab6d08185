"""The promotion hand-over moves no traffic to a stable track whose own rolling update still runs
pods of the old version: its Services route to every pod of the track, so the old version would
answer again after its successor reached 100% (seen in `modelops demo`: the stable rewritten from
churn-v2 to churn-v4 with one new pod ready and one churn-v2 pod still ready got half the traffic)."""

from __future__ import annotations

from modelops.api.modeldeployment import RolloutPhase
from modelops.core.rollout import TrackObservation
from tests.unit.rollout_sim import Sim, spec

GATEWAY = {"gatewayApi": {"httpRoute": "churn", "parentRefs": [{"name": "gw"}]}}


def promoting() -> Sim:
    """churn-v1 -> churn-v2 on 2 replicas behind a Gateway, up to the rewrite of the stable's template."""
    sim = Sim(spec([{"setWeight": 50}], replicas=2, maxSurge="100%", trafficRouting=GATEWAY))
    sim.run()
    assert sim.status.phase == RolloutPhase.HEALTHY
    sim.target = "churn-v2"
    while sim.status.stable_version != "churn-v2":
        sim.step()
    return sim


def rolling(sim: Sim, ready_new: int, updated: bool) -> Sim:
    """The stable Deployment mid-way through its own rolling update (old pods still there: not updated)."""
    sim.stable.ready = ready_new
    original = sim.stable.observe

    def observe() -> TrackObservation:
        obs = original()
        return TrackObservation(obs.exists, obs.version, obs.revision, obs.replicas, obs.ready, updated)

    sim.stable.observe = observe  # type: ignore[method-assign]
    return sim


def test_traffic_stays_on_the_canary_while_the_stable_still_runs_old_pods():
    sim = rolling(promoting(), ready_new=1, updated=False)
    d = sim.decide()
    assert d.route_weight == 100
    assert d.canary is not None
    assert d.canary.replicas == 2  # the canary keeps full capacity meanwhile


def test_traffic_moves_once_every_stable_pod_runs_the_new_version():
    sim = rolling(promoting(), ready_new=1, updated=True)
    d = sim.decide()
    assert d.route_weight == 50
    assert d.canary is not None
    assert d.canary.replicas == 1
