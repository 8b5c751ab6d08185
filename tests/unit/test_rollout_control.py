"""What each `modelops rollout` write command asks for, or why it refuses (pure, table-tested)."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.api.modeldeployment import ModelDeploymentStatus
from modelops.core.rollout_control import (
    ControlRequest,
    Refused,
    previous_stable,
    request_abort,
    request_pause,
    request_promote,
    request_resume,
    request_retry,
    request_undo,
)
from modelops.core.rollout_view import parse_rollout

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]
RUNNING = {
    "phase": "Progressing",
    "observedGeneration": 1,
    "stableVersion": "churn-v1",
    "canaryVersion": "churn-v2",
    "currentStepIndex": 0,
    "canaryWeight": 20,
}
HEALTHY = {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"}
ROLLED_BACK = {**HEALTHY, "phase": "RolledBack", "stableVersion": "churn-v1", "failedVersion": "churn-v2"}


def rollout(status: dict[str, Any], model: dict[str, Any] | None = None, **spec: Any):
    return parse_rollout(
        {
            "metadata": {"name": "churn", "namespace": "default", "generation": 1},
            "spec": {
                "model": model or {"versionRef": "churn-v2"},
                "strategy": {"canary": {"steps": STEPS}},
                **spec,
            },
            "status": status,
        }
    )


WIRE_NAMES = {f.alias or n for n, f in ModelDeploymentStatus.model_fields.items()}


def check(request: ControlRequest, patch: dict[str, Any], summary: str) -> None:
    assert request.patch == patch
    assert request.summary == summary
    if "spec" not in patch:
        assert set(request.patch) <= WIRE_NAMES, "control patches must use the API's own field names"


def test_promote_advances_past_the_current_step_only() -> None:
    check(
        request_promote(rollout({**RUNNING, "currentStepIndex": 1, "phase": "Paused"})),
        {"promoteStep": 1},
        "modeldeployment/churn: requested to advance churn-v2 past step 2/3 (pause (until promoted))",
    )


def test_promote_lifts_a_user_pause() -> None:
    check(
        request_promote(rollout({**RUNNING, "pausedByUser": True})),
        {"promoteStep": 0, "pausedByUser": False},
        "modeldeployment/churn: requested to advance churn-v2 past step 1/3 (setWeight 20) and lifted the user pause",
    )


def test_promote_full() -> None:
    check(
        request_promote(rollout(RUNNING), full=True),
        {"promoteFull": True},
        "modeldeployment/churn: requested full promotion of churn-v2: the remaining steps are skipped and it becomes stable",
    )


@pytest.mark.parametrize(
    ("status", "full", "message"),
    [
        (
            HEALTHY,
            False,
            "modeldeployment/churn has no canary in progress (phase Healthy, churn-v2 serves 100%): nothing to promote",
        ),
        (
            ROLLED_BACK,
            True,
            "modeldeployment/churn is RolledBack (failed version churn-v2): nothing to promote; "
            "`modelops rollout retry churn` rolls it out again",
        ),
        ({**RUNNING, "promoteStep": 0}, False, "promotion past step 1/3 (setWeight 20) already requested"),
        ({**RUNNING, "promoteFull": True}, True, "full promotion of churn-v2 already requested"),
        ({**RUNNING, "abort": True}, False, "has an abort pending"),
        ({**RUNNING, "currentStepIndex": 3}, False, "all steps are done, churn-v2 is being promoted already"),
    ],
)
def test_promote_refusals(status: dict[str, Any], full: bool, message: str) -> None:
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", ".")):
        request_promote(rollout(status), full=full)


def test_degraded_canary_without_auto_rollback_can_still_be_promoted_or_aborted() -> None:
    degraded = {**RUNNING, "phase": "Degraded", "message": "canary churn-v2: errors 0.2 > 0.01; abort or promote"}
    assert request_promote(rollout(degraded)).patch == {"promoteStep": 0}
    assert request_abort(rollout(degraded)).patch == {"abort": True}


def test_abort() -> None:
    check(
        request_abort(rollout(RUNNING)),
        {"abort": True},
        "modeldeployment/churn: requested abort: canary churn-v2 to 0%, churn-v1 back to 100%",
    )
    with pytest.raises(Refused, match="abort already requested"):
        request_abort(rollout({**RUNNING, "abort": True}))
    with pytest.raises(Refused, match="nothing to abort"):
        request_abort(rollout(HEALTHY))
    with pytest.raises(Refused, match=r"is RolledBack \(failed version churn-v2\): nothing to abort"):
        request_abort(rollout(ROLLED_BACK))
    with pytest.raises(Refused, match="churn-v2 is being promoted: too late to abort; `modelops rollout undo churn`"):
        request_abort(rollout({**RUNNING, "currentStepIndex": 3}))


def test_retry() -> None:
    check(
        request_retry(rollout(ROLLED_BACK)),
        {"abort": False, "failedVersion": None},
        "modeldeployment/churn: requested retry: churn-v2 will be rolled out again from the first step",
    )
    check(
        request_retry(rollout({**RUNNING, "abort": True})),
        {"abort": False, "failedVersion": None},
        "modeldeployment/churn: withdrew the pending abort of churn-v2",
    )
    with pytest.raises(Refused, match=r"nothing failed \(phase Healthy\)"):
        request_retry(rollout(HEALTHY))


def test_pause_and_resume() -> None:
    check(
        request_pause(rollout(RUNNING)),
        {"pausedByUser": True},
        "modeldeployment/churn: requested pause at step 1/3 (setWeight 20), canary churn-v2 at 20%",
    )
    with pytest.raises(Refused, match="is already paused"):
        request_pause(rollout({**RUNNING, "pausedByUser": True}))
    with pytest.raises(Refused, match="nothing to pause"):
        request_pause(rollout(HEALTHY))
    check(
        request_resume(rollout({**RUNNING, "pausedByUser": True})),
        {"pausedByUser": False},
        "modeldeployment/churn: requested resume of churn-v2",
    )


@pytest.mark.parametrize(
    ("status", "spec", "message"),
    [
        (RUNNING, {"paused": True}, "paused by spec.paused"),
        (
            {**RUNNING, "phase": "Paused", "currentStepIndex": 1},
            {},
            "a step, not a user pause: `modelops rollout promote churn` goes on",
        ),
        (RUNNING, {}, r"is not paused by a user \(phase Progressing\)"),
        (
            {**RUNNING, "phase": "Paused", "currentStepIndex": 2, "message": "too little traffic"},
            {},
            r"was paused by the operator at step 3/3 \(setWeight 60\): too little traffic; "
            r"`modelops rollout promote churn` goes on, `abort` rolls back",
        ),
    ],
)
def test_resume_refusals(status: dict[str, Any], spec: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused, match=message):
        request_resume(rollout(status, **spec))


def mv(name: str, version: str, created: str, phase: str = "Verified", stage: str = "None", model: str = "churn"):
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"modelName": model, "version": version},
        "status": {"phase": phase, "stage": stage},
    }


VERSIONS = [
    mv("churn-v1", "1", "2026-11-01T00:00:00Z"),
    mv("churn-v2", "2", "2026-11-02T00:00:00Z"),
    mv("churn-v3", "3", "2026-11-03T00:00:00Z"),
    mv("other-v9", "9", "2026-11-02T12:00:00Z", model="other"),
    mv("churn-bad", "2.5", "2026-11-02T06:00:00Z", phase="Failed"),
]


def test_undo_to_previous_stable_from_history() -> None:
    status = {
        **HEALTHY,
        "stableVersion": "churn-v3",
        "history": [
            {"time": "2026-11-02T00:00:00Z", "event": "Promoted", "from": "churn-v0", "to": "churn-v2"},
            {"time": "2026-11-03T00:00:00Z", "event": "Promoted", "from": "churn-v1", "to": "churn-v3"},
            {"time": "2026-11-03T01:00:00Z", "event": "ScaledUp", "from": "2", "to": "4"},
        ],
    }
    r = rollout(status, model={"versionRef": "churn-v3"})
    assert previous_stable(r, VERSIONS) == "churn-v1"
    check(
        request_undo(r, VERSIONS),
        {"spec": {"model": {"versionRef": "churn-v1"}}},
        "modeldeployment/churn: spec.model.versionRef churn-v3 -> churn-v1 (rolled out by the operator)",
    )


def test_undo_without_history_takes_the_newest_older_verified_version_of_the_same_model() -> None:
    r = rollout({**HEALTHY, "stableVersion": "churn-v3"}, model={"versionRef": "churn-v3"})
    assert previous_stable(r, VERSIONS) == "churn-v2"


def test_undo_during_a_canary_or_after_a_rollback_returns_to_the_stable() -> None:
    assert request_undo(rollout(RUNNING), VERSIONS).patch == {"spec": {"model": {"versionRef": "churn-v1"}}}
    assert request_undo(rollout(ROLLED_BACK), VERSIONS).patch == {"spec": {"model": {"versionRef": "churn-v1"}}}


def test_undo_to_version_by_name_or_by_version_number() -> None:
    r = rollout(HEALTHY)
    assert request_undo(r, VERSIONS, "churn-v1").patch == {"spec": {"model": {"versionRef": "churn-v1"}}}
    assert request_undo(r, VERSIONS, "3").patch == {"spec": {"model": {"versionRef": "churn-v3"}}}


@pytest.mark.parametrize(
    ("status", "model", "to", "message"),
    [
        (
            HEALTHY,
            {"modelName": "churn"},
            None,
            r"tracks the newest Production version of model churn \(spec.model.modelName\)",
        ),
        (HEALTHY, None, "7", r"no ModelVersion named '7' or with version '7' of model churn"),
        (HEALTHY, None, "churn-v2", "already has spec.model.versionRef churn-v2"),
        (HEALTHY, None, "2.5", r"ModelVersion churn-bad failed verification"),
        (
            HEALTHY,
            {"versionRef": "churn-v2", "stage": "Production"},
            "churn-v1",
            "is in stage None, but spec.model.stage requires Production",
        ),
        ({"phase": "Healthy", "observedGeneration": 1}, None, None, "no previous stable version is known"),
    ],
)
def test_undo_refusals(status: dict[str, Any], model: dict[str, Any] | None, to: str | None, message: str) -> None:
    with pytest.raises(Refused, match=message):
        request_undo(rollout(status, model=model), VERSIONS, to)
