"""The CEL rules in the generated CRDs, evaluated with cel-python as the fake API server does."""

from __future__ import annotations

import copy

import pytest

from modelops.api.crdgen import KINDS, crd
from modelops.sandbox.schema import validate_cel


def spec_schema(kind: str):
    k = next(k for k in KINDS if k.kind == kind)
    return crd(k)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


MV = {
    "modelName": "churn",
    "version": "1",
    "artifact": {"uri": "s3://m/1", "digest": "sha256:" + "a" * 64, "format": "joblib"},
    "framework": "sklearn",
    "metrics": {"auc": 0.9},
    "stage": "None",
}


def errors(kind, new, old=None):
    return [(c.field, c.detail) for c in validate_cel(new, old, spec_schema(kind), "spec", has_old=old is not None)]


def test_model_version_create_has_no_transition_checks():
    assert errors("ModelVersion", MV) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("modelName",), "other"),
        (("version",), "2"),
        (("artifact", "digest"), "sha256:" + "b" * 64),
        (("artifact", "uri"), "s3://m/evil"),
        (("framework",), "xgboost"),
        (("metrics",), {"auc": 0.99}),
    ],
)
def test_model_version_fields_are_immutable(path, value):
    new = copy.deepcopy(MV)
    target = new
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    errs = errors("ModelVersion", new, MV)
    assert errs, f"changing {'.'.join(path)} must be rejected"
    assert errs[0][0] == f"spec.{path[0]}"
    assert "immutable" in errs[0][1]


def test_adding_or_removing_optional_immutable_fields_is_rejected():
    added = {**MV, "lineage": {"codeCommit": "abc"}}
    assert [f for f, _ in errors("ModelVersion", added, MV)] == ["spec.lineage"]
    removed = {k: v for k, v in MV.items() if k != "metrics"}
    assert [f for f, _ in errors("ModelVersion", removed, MV)] == ["spec.metrics"]


def test_stage_and_approval_may_change():
    new = {
        **MV,
        "stage": "Production",
        "approval": {"approvedBy": "a", "approvedAt": "2026-11-26T00:00:00Z", "reason": "r"},
    }
    assert errors("ModelVersion", new, MV) == []


def md(steps):
    return {"model": {"versionRef": "churn-v1"}, "strategy": {"canary": {"steps": steps}}}


@pytest.mark.parametrize(
    ("weights", "ok"),
    [([10, 50, 100], True), ([10, 10, 20], True), ([50, 20], False), ([0, 100, 99], False), ([], True)],
)
def test_canary_weights_non_decreasing(weights, ok):
    steps = [{"setWeight": w} for w in weights] + [{"pause": {}}]
    errs = errors("ModelDeployment", md(steps))
    assert (errs == []) == ok, errs
    if not ok:
        assert errs[0][0] == "spec.strategy.canary.steps"


def test_canary_step_sets_exactly_one_thing():
    errs = errors("ModelDeployment", md([{"setWeight": 10, "pause": {}}]))
    assert errs
    assert errs[0][0] == "spec.strategy.canary.steps[0]"


def test_model_ref_exactly_one():
    assert errors("ModelDeployment", {"model": {}})
    assert errors("ModelDeployment", {"model": {"versionRef": "a", "modelName": "b"}})
    assert errors("ModelDeployment", {"model": {"modelName": "b"}}) == []


@pytest.mark.parametrize(("schedule", "ok"), [("@hourly", True), ("", False)])
def test_drift_schedule_not_empty(schedule, ok):
    errs = errors("DriftMonitor", {"target": {"deployment": "d"}, "schedule": schedule})
    assert (errs == []) == ok


@pytest.mark.parametrize(
    ("digest", "ok"), [("sha256:" + "a" * 64, True), ("sha256:" + "A" * 64, False), ("md5:x", False)]
)
def test_digest_rule(digest, ok):
    new = {**MV, "artifact": {**MV["artifact"], "digest": digest}}
    errs = errors("ModelVersion", new)
    assert (errs == []) == ok
    if not ok:
        assert errs[0][0] == "spec.artifact.digest"


def test_weight_range_rule():
    errs = errors("ModelDeployment", md([{"setWeight": 150}]))
    assert ("spec.strategy.canary.steps", 'Invalid value: "object": setWeight must be within 0..100') in errs
