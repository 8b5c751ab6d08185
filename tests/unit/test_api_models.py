"""The pydantic models: wire names, defaults and the same rules the CRD's CEL enforces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from modelops.api.driftmonitor import DriftMonitorSpec
from modelops.api.modeldeployment import CanaryStrategy, ModelDeploymentSpec, ModelRef
from modelops.api.modelversion import ModelVersionSpec, Stage

DIGEST = "sha256:" + "ab" * 32


def mv(**over):
    base = {"modelName": "churn", "version": "1", "artifact": {"uri": "s3://b/m.joblib", "digest": DIGEST}}
    return {**base, **over}


def test_model_version_round_trips_camel_case():
    spec = ModelVersionSpec.model_validate(
        mv(lineage={"codeCommit": "abc", "parentVersion": "churn-v0", "dataset": {"uri": "s3://d"}})
    )
    assert spec.lineage is not None
    assert spec.lineage.code_commit == "abc"
    wire = spec.to_wire()
    assert wire["lineage"]["parentVersion"] == "churn-v0"
    assert wire["stage"] == Stage.NONE
    assert ModelVersionSpec.model_validate(wire) == spec


@pytest.mark.parametrize(
    "digest",
    ["md5:abc", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:" + "g" * 64, "a" * 64, ""],
)
def test_digest_must_be_sha256_hex(digest):
    with pytest.raises(ValidationError) as err:
        ModelVersionSpec.model_validate(mv(artifact={"uri": "s3://x", "digest": digest}))
    assert err.value.errors()[0]["loc"] == ("artifact", "digest")


def test_unknown_fields_and_stages_rejected():
    with pytest.raises(ValidationError):
        ModelVersionSpec.model_validate(mv(stage="Prod"))
    with pytest.raises(ValidationError):
        ModelVersionSpec.model_validate(mv(colour="blue"))


def steps(*weights):
    return [{"setWeight": w} for w in weights]


@given(st.lists(st.integers(0, 100), min_size=1, max_size=10))
def test_canary_weights_accepted_iff_non_decreasing(weights):
    ok = weights == sorted(weights)
    try:
        CanaryStrategy.model_validate({"steps": steps(*weights)})
        assert ok
    except ValidationError:
        assert not ok


@pytest.mark.parametrize("bad", [-1, 101])
def test_canary_weight_range(bad):
    with pytest.raises(ValidationError):
        CanaryStrategy.model_validate({"steps": steps(bad)})


def test_pauses_and_analysis_do_not_break_monotonicity():
    CanaryStrategy.model_validate(
        {
            "steps": [
                {"setWeight": 10},
                {"pause": {"duration": "30s"}},
                {"analysis": {"metrics": [{"name": "errors", "kind": "errorRate", "max": 0.01}]}},
                {"setWeight": 50},
                {"pause": {}},
            ]
        }
    )


@pytest.mark.parametrize(
    "step", [{}, {"setWeight": 10, "pause": {}}, {"pause": {"duration": "soon"}}], ids=["none", "two", "bad-duration"]
)
def test_a_step_is_exactly_one_valid_thing(step):
    with pytest.raises(ValidationError):
        CanaryStrategy.model_validate({"steps": [step]})


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ({"versionRef": "churn-v1"}, True),
        ({"modelName": "churn"}, True),
        ({}, False),
        ({"versionRef": "a", "modelName": "b"}, False),
    ],
)
def test_model_ref_exactly_one(ref, ok):
    if ok:
        assert ModelDeploymentSpec.model_validate({"model": ref}).replicas == 1
    else:
        with pytest.raises(ValidationError):
            ModelRef.model_validate(ref)


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("*/15 * * * *", True),
        ("@hourly", True),
        ("0 3 * * 1-5", True),
        ("", False),
        ("   ", False),
        ("* * *", False),
        ("@sometimes", False),
    ],
)
def test_drift_schedule(schedule, ok):
    body = {"target": {"deployment": "churn"}, "schedule": schedule}
    if ok:
        spec = DriftMonitorSpec.model_validate(body)
        assert spec.drift.drift_share == 0.5
        assert spec.policy.consecutive_checks == 1
    else:
        with pytest.raises(ValidationError):
            DriftMonitorSpec.model_validate(body)
