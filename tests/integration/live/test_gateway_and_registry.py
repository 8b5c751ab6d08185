"""Gateway API weights and registry-driven delivery on the sandbox cluster (scenarios.py drives them)."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.live.scenarios import GatewayRollout, RegistryRollout

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary"),
]


def test_gateway_api_split_matches_the_step_weight(gateway_rollout: GatewayRollout) -> None:
    """Canary weight 30 on an HTTPRoute: the gateway picks a backend per request by smooth weighted
    round robin, so >= 1,000 answers through the Gateway's port split 70/30 within 3 points, although
    one pod runs on each track (a replica ratio would give 50/50)."""
    r = gateway_rollout
    assert r.route_weights == {"churn-stable": 70, "churn-canary": 30}
    assert r.pods == {"canary": 1, "stable": 1}
    total = sum(r.answers.values())
    assert total >= 1000
    assert set(r.answers) <= {"1", "2"}, r.answers
    assert abs(100 * r.answers.get("2", 0) / total - 30) <= 3, r.answers
    assert r.route_weights_after == {"churn-stable": 100, "churn-canary": 0}
    assert set(r.after) == {"2"}, r.after
    assert set(r.everything) == {"1", "2"}, r.everything  # no request failed, hand-over included
    assert r.status["stableVersion"] == "churn-v2"


def test_approving_a_version_for_production_starts_its_rollout(registry_rollout: RegistryRollout) -> None:
    """`modelName: churn` tracks the newest approved Production version: churn-v2 in Staging is not
    deployed; `modelops registry promote churn-v2 --to Production --approved-by ...` rolls it out,
    with no edit of the ModelDeployment."""
    r = registry_rollout
    assert r.before["stableVersion"] == "churn-v1"
    assert r.before["phase"] == "Healthy"
    assert r.promote.returncode == 0, r.promote.stderr
    assert r.generation_after == r.generation_before  # nobody touched the spec
    started = [e["message"] for e in r.events if e["reason"] == "RolloutStarted"]
    assert len(started) == 1, r.events
    assert "churn-v1 -> churn-v2" in started[0]
    assert r.status["stableVersion"] == "churn-v2"
    assert r.model_version_v2["status"]["deployments"] == [
        {"namespace": "live-registry", "name": "churn", "track": "stable", "weight": 100}
    ]
