"""Which ModelVersion a ModelDeployment serves, and why none: reasons for conditions and Events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelops.api.modeldeployment import ModelRef
from modelops.api.modelversion import Phase, Stage
from modelops.core.version_selection import VersionInfo, select_version

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def v(name: str, minute: int = 0, **kw) -> VersionInfo:
    base = VersionInfo(
        name=name,
        model_name=kw.pop("model", "churn"),
        version=name[-1],
        uri=f"s3://m/{name}",
        digest="sha256:" + "0" * 64,
        phase=Phase.VERIFIED,
        stage=Stage.PRODUCTION,
        approved=True,
        created=T0 + timedelta(minutes=minute),
    )
    return replace(base, **kw)


@pytest.mark.parametrize(
    ("version", "stage", "reason"),
    [
        (None, None, "NotFound"),
        (v("churn-v1", phase=Phase.PENDING), None, "VerificationPending"),
        (v("churn-v1", phase=Phase.FAILED), None, "NotVerified"),
        (v("churn-v1", stage=Stage.STAGING), "Production", "WrongStage"),
        (v("churn-v1", approved=False), "Production", "NotApproved"),
        (v("churn-v1", stage=Stage.STAGING, approved=False), None, ""),  # versionRef: stage unchecked unless set
        (v("churn-v1"), "Production", ""),
    ],
)
def test_version_ref(version, stage, reason):
    ref = ModelRef.model_validate({"versionRef": "churn-v1", **({"stage": stage} if stage else {})})
    sel = select_version(ref, [version] if version else [])
    assert sel.reason == reason
    assert (sel.version is not None) == (reason == "")
    if reason:
        assert "churn-v1" in sel.message


def test_model_name_picks_the_newest_eligible_by_creation_time():
    versions = [
        v("churn-v10", minute=1),
        v("churn-v9", minute=2),  # registered later: newer, whatever its name says
        v("churn-v11", minute=3, stage=Stage.STAGING),  # not in Production
        v("fraud-v1", minute=9, model="fraud"),
    ]
    sel = select_version(ModelRef(model_name="churn"), versions)
    assert sel.version is not None
    assert sel.version.name == "churn-v9"


def test_model_name_skips_unapproved_unless_approval_is_not_required():
    versions = [v("churn-v1", minute=1), v("churn-v2", minute=2, approved=False)]
    assert select_version(ModelRef(model_name="churn"), versions).version.name == "churn-v1"
    lax = ModelRef(model_name="churn", require_approval=False)
    assert select_version(lax, versions).version.name == "churn-v2"


def test_model_name_with_no_eligible_version_names_the_newest_reason():
    sel = select_version(ModelRef(model_name="churn"), [v("churn-v1", approved=False)])
    assert sel.reason == "NoEligibleVersion"
    assert "churn-v1 has no spec.approval" in sel.message
    assert not sel.transient
    assert select_version(ModelRef(model_name="churn"), []).reason == "NotFound"


def test_a_newest_version_still_verifying_is_transient():
    sel = select_version(ModelRef(model_name="churn", stage=Stage.STAGING), [v("churn-v1", phase=Phase.PENDING)])
    assert (sel.reason, sel.transient) == ("VerificationPending", True)


def test_from_object_reads_the_effective_stage_from_status():
    obj = {
        "metadata": {"name": "churn-v2", "creationTimestamp": "2026-01-01T00:05:00Z"},
        "spec": {
            "modelName": "churn",
            "version": "2",
            "artifact": {"uri": "s3://m/2", "digest": "sha256:" + "1" * 64, "format": "onnx"},
            "framework": "onnx",
            "stage": "Production",
            "approval": {"approvedBy": "a", "approvedAt": "2026-01-01T00:00:00Z", "reason": "ok"},
        },
        "status": {"phase": "Verified", "stage": "Staging"},
    }
    info = VersionInfo.from_object(obj)
    assert (info.stage, info.phase, info.approved, info.artifact_format) == (
        Stage.STAGING,
        Phase.VERIFIED,
        True,
        "onnx",
    )
    assert info.created == T0 + timedelta(minutes=5)
