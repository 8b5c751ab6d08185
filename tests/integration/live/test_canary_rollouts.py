"""ModelDeployment canaries on the sandbox cluster: real model-server pods, live traffic through the
Service, analysis on what the real Prometheus scraped from them (scenarios.py drives the rollouts).
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from tests.integration.live.scenarios import GOOD_PAUSES, GoodRollout, RolledBack

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary"),
]

Obj = dict[str, Any]


def share(answers: dict[str, int], key: str) -> float:
    return answers.get(key, 0) / sum(answers.values())


def condition(status: Obj, type_: str) -> Obj:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def reasons(events: list[Obj], type_: str | None = None) -> list[str]:
    return [e["reason"] for e in events if type_ is None or e["type"] == type_]


def test_good_version_rolls_out_through_three_weights_with_analysis_under_live_load(good_rollout: GoodRollout) -> None:
    """churn-v1 -> churn-v2 on 4 replicas: 25%, 50%, 75%, each held and analysed, then 100%.

    The traffic is 30 requests/s (10 customers each) through the Service, a new connection per
    request, and the service proxy balances connections round robin over the ready endpoints:
    with 4 replicas, weight 25 is 1 canary pod of 4, 50 is 2 of 4, 75 is 3 of 4, so each pod gets
    every 4th connection. A window of >= 200 answers then differs from the pod ratio only by its
    edges (the round in progress, and the <= 8 requests in flight whose answers may fall in either
    window): well under a point in practice. The tolerance is 3 points; the endpoints are checked
    to be exactly that ratio before and after each window, so nothing else moves the split.
    """
    r = good_rollout
    assert set(r.before) == {"1"}, r.before
    assert [w.weight for w in r.windows] == [25, 50, 75]
    for window, (_, weight) in zip(r.windows, GOOD_PAUSES, strict=True):
        canary_pods = {25: 1, 50: 2, 75: 3}[weight]
        expected = sorted(["canary"] * canary_pods + ["stable"] * (4 - canary_pods))
        assert window.status_weight == weight
        assert window.endpoints_before == expected, window
        assert window.endpoints_after == expected, window
        assert set(window.answers) <= {"1", "2"}, window.answers  # no errors, no unreachable pods
        assert sum(window.answers.values()) >= 200
        assert abs(100 * share(window.answers, "2") - weight) <= 3, window
        assert window.serving == {
            "churn-v1": [{"namespace": r.namespace, "name": "churn", "track": "stable", "weight": 100 - weight}],
            "churn-v2": [{"namespace": r.namespace, "name": "churn", "track": "canary", "weight": weight}],
        }
        assert window.prometheus_weight == weight
    assert set(r.after) == {"2"}, r.after
    # no request failed from before the canary to after the hand-over: pods joined the Service when
    # ready and left it before they stopped
    assert set(r.everything) == {"1", "2"}, r.everything

    status = r.status
    assert status["phase"] == "Healthy"
    assert status["stableVersion"] == "churn-v2"
    assert status.get("canaryVersion") is None
    assert status["canaryWeight"] == 0
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Stalled")["status"] == "False"
    assert status["tracks"]["stable"]["version"] == "churn-v2"
    assert status["tracks"]["stable"]["readyReplicas"] == 4

    runs = [run for run in status["analysisRuns"] if run["version"] == "churn-v2"]
    assert [(run["stepIndex"], run["phase"]) for run in runs] == [
        (2, "Successful"),
        (5, "Successful"),
        (8, "Successful"),
    ]
    for run in runs:
        by_metric: dict[str, list[Obj]] = {}
        for m in run["measurements"]:
            by_metric.setdefault(m["name"], []).append(m)
        assert sorted(by_metric) == ["errors", "latency", "shift"]
        for name, taken in by_metric.items():
            assert [m["phase"] for m in taken] == ["Successful", "Successful"], (name, taken)
            assert all(m["samples"] >= 10 for m in taken), taken
        assert all(m["value"] == 0 for m in by_metric["errors"]), by_metric["errors"]
        assert all(0 <= m["value"] <= 0.2 for m in by_metric["shift"]), by_metric["shift"]
        assert all(0 < m["value"] <= 1 for m in by_metric["latency"]), by_metric["latency"]

    normal = reasons(r.events, "Normal")
    assert reasons(r.events, "Warning") == [], r.events
    assert normal.count("RolloutStarted") == 1
    assert normal.count("Promoted") == 1
    assert normal.count("AnalysisSuccessful") == 3
    weights = [e["message"] for e in r.events if e["reason"] == "WeightSet"]
    assert [re.search(r"at (\d+)%", m).group(1) for m in weights] == ["25", "50", "75", "100"], weights  # type: ignore[union-attr]

    assert r.model_version_v2["status"]["deployments"] == [
        {"namespace": r.namespace, "name": "churn", "track": "stable", "weight": 100}
    ]
    assert (r.model_version_v1.get("status") or {}).get("deployments") in (None, [])


def _rolled_back(r: RolledBack, metric: str, threshold: str) -> float:
    """The common checks of an analysis rollback; returns the failing value the message names."""
    status = r.status
    assert status["phase"] == "RolledBack"
    assert status["failedVersion"] == r.version
    assert status["stableVersion"] == "churn-v2"
    assert status.get("canaryVersion") is None
    assert status["canaryWeight"] == 0
    stalled = condition(status, "Stalled")
    assert stalled["status"] == "True"
    assert condition(status, "Ready")["status"] == "False"
    pattern = rf"{metric} (\d+(?:\.\d+)?(?:e-?\d+)?) > {threshold}"
    found = re.search(pattern, status["message"])
    assert found, status["message"]
    assert re.search(pattern, stalled["message"]), stalled
    warnings = [e for e in r.events if e["type"] == "Warning" and e["reason"] == "RolledBack"]
    assert len(warnings) == 1, r.events
    assert re.search(pattern, warnings[0]["message"]), warnings
    assert "100% back on churn-v2" in warnings[0]["message"]
    # not retried: one rollout only, and all traffic on the stable, also after the failed version changed
    assert reasons(r.events).count("RolloutStarted") == 1, r.events
    assert r.canary_replicas == 0
    assert r.most_pods == 3  # the budget: replicas 2 + maxSurge 25% (rounded up to 1 pod), used and kept
    assert set(r.after) == {"2"}, r.after
    assert sum(r.after.values()) >= 100
    assert set(r.later) == {"2"}, r.later
    assert sum(r.later.values()) >= 100
    run = status["analysisRuns"][-1]
    assert (run["version"], run["stepIndex"], run["phase"]) == (r.version, 1, "Failed")
    return float(found.group(1))


def test_shifted_predictions_are_rolled_back_by_prediction_shift(bad_rollouts: dict[str, RolledBack]) -> None:
    """churn-v3 answers "churn" for ~82% of customers against ~49% for churn-v2: requests succeed,
    so only predictionShift sees it."""
    r = bad_rollouts["shifted"]
    assert r.during.get("3", 0) > 0, r.during  # the canary served before it was rolled back
    assert set(r.everything) == {"2", "3"}, r.everything
    value = _rolled_back(r, "shift", "max 0.2")
    assert value > 0.2
    failed = [m for m in r.status["analysisRuns"][-1]["measurements"] if m["phase"] == "Failed"]
    assert {m["name"] for m in failed} == {"shift"}
    errors = [m for m in r.status["analysisRuns"][-1]["measurements"] if m["name"] == "errors"]
    assert all(m["value"] == 0 for m in errors), errors


def test_schema_change_is_rolled_back_by_error_rate(bad_rollouts: dict[str, RolledBack]) -> None:
    """churn-v4 expects five features: every four-feature request gets a 400 from its canary pod."""
    r = bad_rollouts["schema"]
    assert r.during.get("http 400", 0) > 0, r.during
    assert set(r.everything) == {"2", "http 400"}, r.everything
    value = _rolled_back(r, "errors", "max 0.05")
    assert value == 1
