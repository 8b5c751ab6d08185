"""`modelops rollout get/status` layout: fixed ModelDeployment bodies and a fixed clock -> exact lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelops.core.rollout_view import Outcome, UnreadableStatus, clock, ended, parse_rollout, progress, render

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)

STEPS = [
    {"setWeight": 10},
    {"pause": {"duration": "10m"}},
    {
        "analysis": {
            "metrics": [
                {"name": "errors", "kind": "errorRate", "max": 0.01, "count": 3},
                {"name": "shift", "kind": "predictionShift", "max": 0.2, "count": 2},
            ]
        }
    },
    {"setWeight": 50},
    {"pause": {}},
]


def body(status: dict[str, Any], generation: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
        "spec": {
            "model": {"versionRef": "churn-v3"},
            "replicas": 4,
            "strategy": {"canary": {"steps": STEPS}},
            **spec,
        },
        "status": status,
    }


PAUSED_STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "observedGeneration": 2,
    "stableVersion": "churn-v2",
    "canaryVersion": "churn-v3",
    "currentStepIndex": 1,
    "canaryWeight": 10,
    "stepStartedAt": "2026-11-30T11:56:48Z",  # 3m12s ago: 6m48s of the 10m pause left
    "message": "pausing 10m before the analysis",
    "tracks": {
        "stable": {"version": "churn-v2", "replicas": 4, "readyReplicas": 4},
        "canary": {"version": "churn-v3", "replicas": 1, "readyReplicas": 0},
    },
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "StableAvailable", "message": "churn-v2 serves"},
        {"type": "Progressing", "status": "True", "reason": "CanaryStep", "message": "step 2/5"},
    ],
}


def test_timed_pause_shows_remaining_time_and_current_marker() -> None:
    assert render(parse_rollout(body(PAUSED_STATUS)), NOW) == [
        "Name:          churn",
        "Namespace:     ml",
        "Model:         churn-v3 (versionRef)",
        "Phase:         Progressing",
        "Message:       pausing 10m before the analysis",
        "Generation:    2 (observed)",
        "Stable:        churn-v2   4/4 ready",
        "Canary:        churn-v3   0/1 ready",
        "Canary weight: 10%",
        "",
        "Steps:",
        "  [x] 1/5  setWeight 10",
        "  [>] 2/5  pause 10m (6m48s left)",
        "  [ ] 3/5  analysis errors, shift",
        "  [ ] 4/5  setWeight 50",
        "  [ ] 5/5  pause (until promoted)",
        "",
        "Conditions:",
        "  TYPE          STATUS   REASON            MESSAGE",
        "  Ready         True     StableAvailable   churn-v2 serves",
        "  Progressing   True     CanaryStep        step 2/5",
    ]


def test_analysis_measurements_latest_per_metric_with_count_taken() -> None:
    status = {
        **PAUSED_STATUS,
        "currentStepIndex": 2,
        "stepStartedAt": "2026-11-30T11:58:30Z",
        "message": "analysing churn-v3",
        "conditions": [],
        "analysisRuns": [
            {"stepIndex": 2, "startedAt": "2026-11-29T10:00:00Z", "phase": "Failed", "version": "churn-old"},
            {
                "stepIndex": 2,
                "startedAt": "2026-11-30T11:58:30Z",
                "phase": "Running",
                "version": "churn-v3",
                "measurements": [
                    {"name": "errors", "value": 0.5, "phase": "Failed", "message": "old"},
                    {"name": "shift", "value": 0.04213, "stableValue": None, "samples": 812, "phase": "Successful"},
                    {
                        "name": "errors",
                        "value": 0.0025,
                        "stableValue": 0.001,
                        "samples": 1200,
                        "phase": "Successful",
                        "message": "0.0025 <= max 0.01",
                    },
                ],
            },
        ],
    }
    lines = render(parse_rollout(body(status)), NOW)
    steps_at = lines.index("Steps:")
    assert lines[steps_at + 1 : steps_at + 4] == [
        "  [x] 1/5  setWeight 10",
        "  [x] 2/5  pause 10m",
        "  [>] 3/5  analysis errors, shift",
    ]
    analysis_at = next(i for i, line in enumerate(lines) if line.startswith("Analysis"))
    assert lines[analysis_at:] == [
        "Analysis at step 3/5 of churn-v3: Running, started 1m30s ago",
        "  METRIC   TAKEN   CANARY    STABLE   SAMPLES   PHASE        MESSAGE",
        "  errors   2/3     0.0025    0.001    1200      Successful   0.0025 <= max 0.01",
        "  shift    1/2     0.04213   -        812       Successful",
    ]


def test_rolled_back_shows_failed_version_failed_measurement_and_no_marker() -> None:
    status = {
        "phase": "RolledBack",
        "observedGeneration": 2,
        "stableVersion": "churn-v2",
        "canaryWeight": 0,
        "failedVersion": "churn-v3",
        "message": "predictionShift shift = 0.61 > max 0.2",
        "tracks": {"stable": {"version": "churn-v2", "replicas": 4, "readyReplicas": 4}},
        "analysisRuns": [
            {
                "stepIndex": 2,
                "startedAt": "2026-11-30T11:50:00Z",
                "phase": "Failed",
                "version": "churn-v3",
                "message": "shift failed",
                "measurements": [
                    {"name": "shift", "value": 0.61, "samples": 900, "phase": "Failed", "message": "0.61 > max 0.2"}
                ],
            }
        ],
        "conditions": [
            {"type": "Stalled", "status": "True", "reason": "AnalysisFailed", "message": "shift 0.61 > 0.2"},
        ],
    }
    lines = render(parse_rollout(body(status)), NOW)
    assert lines[3:10] == [
        "Phase:         RolledBack",
        "Message:       predictionShift shift = 0.61 > max 0.2",
        "Generation:    2 (observed)",
        "Stable:        churn-v2   4/4 ready",
        "Canary weight: 0%",
        "Failed:        churn-v3 (not rolled out again until `retry` or a spec change)",
        "",
    ]
    assert "  [ ] 3/5  analysis errors, shift" in lines
    assert not any(line.startswith("  [>]") or line.startswith("  [x]") for line in lines)
    assert "Analysis at step 3/5 of churn-v3: Failed, started 10m00s ago: shift failed" in lines
    assert "  shift    1/2     0.61     -        900       Failed   0.61 > max 0.2" in lines
    outcome, line = progress(parse_rollout(body(status)))
    assert outcome is Outcome.FAILED
    assert line == 'modeldeployment "churn" RolledBack (AnalysisFailed): predictionShift shift = 0.61 > max 0.2'


def test_pending_user_requests_and_stale_generation_are_visible() -> None:
    status = {**PAUSED_STATUS, "observedGeneration": 1, "pausedByUser": True, "promoteStep": 1, "abort": True}
    lines = render(parse_rollout(body(status, generation=3)), NOW)
    assert "Generation:    3 (observed 1: the operator has not caught up with the spec)" in lines
    assert "Paused by:     a user (`modelops rollout resume churn` goes on)" in lines
    assert "Requested:     abort; promote of step 2 (waiting for the operator)" in lines


def test_model_name_tracking_and_paused_spec() -> None:
    obj = body({"phase": "Healthy", "observedGeneration": 2, "stableVersion": "churn-v2"}, paused=True)
    obj["spec"]["model"] = {"modelName": "churn"}
    lines = render(parse_rollout(obj), NOW)
    assert lines[2:4] == [
        "Model:         newest Production approved version of churn (modelName)",
        "Phase:         Healthy (spec.paused)",
    ]
    assert "Stable:        churn-v2   0/0 ready" in lines


def test_invalid_spec_is_shown_not_fatal_and_no_steps() -> None:
    obj = body({}, generation=1)
    obj["spec"] = {"model": {"versionRef": "a", "modelName": "b"}}
    lines = render(parse_rollout(obj), NOW)
    assert lines[2].startswith("Spec:          invalid: spec.model")
    assert "  (no canary steps: every new version goes straight to 100%)" in lines
    assert "Generation:    1 (observed -: the operator has not caught up with the spec)" in lines


def test_unreadable_status_names_the_field() -> None:
    with pytest.raises(UnreadableStatus, match=r"status\.canaryWeight"):
        parse_rollout(body({"canaryWeight": "lots"}))


@pytest.mark.parametrize(
    ("status", "generation", "outcome", "line"),
    [
        (
            {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"},
            2,
            Outcome.WAITING,
            'Waiting for modeldeployment "churn" to be observed by the operator (generation 2, observed 1)...',
        ),
        (
            {},
            1,
            Outcome.WAITING,
            'Waiting for modeldeployment "churn" to be observed by the operator (generation 1, observed none)...',
        ),
        (
            {
                "phase": "Healthy",
                "observedGeneration": 2,
                "stableVersion": "churn-v3",
                "tracks": {"stable": {"replicas": 4, "readyReplicas": 4}},
            },
            2,
            Outcome.SUCCEEDED,
            'modeldeployment "churn" successfully rolled out: churn-v3 serves 100%, 4/4 ready',
        ),
        (
            PAUSED_STATUS,
            2,
            Outcome.WAITING,
            'Waiting for modeldeployment "churn" rollout of churn-v3 to finish: '
            "step 2/5 pause 10m, canary weight 10%, canary 0/1 ready...",
        ),
        (
            {**PAUSED_STATUS, "phase": "Paused", "currentStepIndex": 4, "canaryWeight": 50, "message": "promote me"},
            2,
            Outcome.WAITING,
            'modeldeployment "churn" paused (step 5/5 pause (until promoted), canary weight 50%, canary 0/1 ready): '
            "promote me",
        ),
        (
            {**PAUSED_STATUS, "currentStepIndex": 5, "canaryWeight": 100},
            2,
            Outcome.WAITING,
            'Waiting for modeldeployment "churn" rollout of churn-v3 to finish: '
            "all 5 steps done, promoting, canary weight 100%, canary 0/1 ready...",
        ),
        (
            {
                "phase": "Pending",
                "observedGeneration": 2,
                "message": "ModelVersion churn-v3 not found",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "VersionNotFound", "message": "churn-v3?"},
                    {"type": "Stalled", "status": "True", "reason": "VersionNotFound", "message": "churn-v3?"},
                ],
            },
            2,
            Outcome.FAILED,
            'modeldeployment "churn" Pending (VersionNotFound): ModelVersion churn-v3 not found',
        ),
        (
            {
                "phase": "Healthy",
                "observedGeneration": 2,
                "stableVersion": "churn-v2",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "VersionNotVerified",
                        "message": "verifying churn-v3",
                    }
                ],
            },
            2,
            Outcome.WAITING,
            'Waiting for modeldeployment "churn": churn-v2 serves 100% but it is not Ready (VersionNotVerified): '
            "verifying churn-v3",
        ),
        (
            {
                "phase": "Degraded",
                "observedGeneration": 2,
                "message": "progress deadline 30m exceeded",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "x"}
                ],
            },
            2,
            Outcome.FAILED,
            'modeldeployment "churn" Degraded (ProgressDeadlineExceeded): progress deadline 30m exceeded',
        ),
    ],
)
def test_progress_lines_respect_observed_generation(
    status: dict[str, Any], generation: int, outcome: Outcome, line: str
) -> None:
    assert progress(parse_rollout(body(status, generation=generation))) == (outcome, line)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-5, "0s"), (44.2, "45s"), (192, "3m12s"), (3900, "1h05m"), (49 * 3600, "2d1h")],
)
def test_clock(seconds: float, text: str) -> None:
    assert clock(seconds) == text


def test_pause_counts_from_the_operators_pause_clock() -> None:
    status = {**PAUSED_STATUS, "phase": "Paused", "pauseStartedAt": "2026-11-30T11:58:00Z"}
    assert "  [>] 2/5  pause 10m (8m00s left)" in render(parse_rollout(body(status)), NOW)


def test_overdue_timed_pause_says_advancing() -> None:
    status = {**PAUSED_STATUS, "stepStartedAt": "2026-11-30T11:40:00Z"}
    assert "  [>] 2/5  pause 10m (done, advancing)" in render(parse_rollout(body(status)), NOW)


@pytest.mark.parametrize(
    ("status", "generation", "outcome"),
    [
        ({"phase": "Healthy", "observedGeneration": 2, "stableVersion": "churn-v3"}, 2, Outcome.SUCCEEDED),
        ({"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"}, 2, Outcome.WAITING),
        ({"phase": "RolledBack", "observedGeneration": 2, "failedVersion": "churn-v3"}, 2, Outcome.FAILED),
        ({**PAUSED_STATUS, "phase": "Degraded"}, 2, Outcome.FAILED),
        (
            {
                **PAUSED_STATUS,
                "phase": "Paused",
                "conditions": [{"type": "Stalled", "status": "True", "reason": "AnalysisInconclusive"}],
            },
            2,
            Outcome.WAITING,
        ),
    ],
)
def test_watch_ends_on_healthy_rolled_back_or_degraded_only(
    status: dict[str, Any], generation: int, outcome: Outcome
) -> None:
    """A stalled but live rollout (waiting for a person's promote) fails `status` but stays on screen."""
    assert ended(parse_rollout(body(status, generation=generation))) is outcome
