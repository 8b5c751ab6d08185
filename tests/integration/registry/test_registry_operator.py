"""The registry reconciler end to end: operator in-process, fake API server with the real CRDs."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest

from modelops.k8s.resources import MODEL_VERSION, Rejected
from modelops.telemetry import MODEL_VERSION_INFO
from tests.integration.registry.conftest import cond, model_version, status, wait_event, wait_for

pytestmark = pytest.mark.usefixtures("operator")


def approval(who: str = "alice") -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return {"approvedBy": who, "approvedAt": now, "reason": "beats baseline"}


def test_register_verifies_digest(custom_objects, core_api, artifact):
    uri, digest = artifact(b"model bytes v1")
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-v1", uri, digest))
    obj = wait_for(custom_objects, "churn-v1", lambda o: status(o).get("phase") == "Verified")
    assert status(obj)["verifiedDigest"] == digest
    assert status(obj)["artifactSizeBytes"] == len(b"model bytes v1")
    assert cond(obj, "Ready")["status"] == "True"
    assert cond(obj, "Ready")["reason"] == "ArtifactVerified"
    assert status(obj)["observedGeneration"] == obj["metadata"]["generation"]
    assert [h["event"] for h in status(obj)["history"]] == ["Registered", "Verified"]
    assert wait_event(core_api, "churn-v1", "ArtifactVerified").type == "Normal"
    samples = {
        (s.labels["name"], s.labels["phase"], s.labels["stage"])
        for metric in MODEL_VERSION_INFO.collect()
        for s in metric.samples
    }
    assert ("churn-v1", "Verified", "None") in samples


def test_digest_mismatch_fails_with_warning_event(custom_objects, core_api, artifact):
    uri, _ = artifact(b"the real bytes")
    wrong = "sha256:" + "0" * 64
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-bad", uri, wrong))
    obj = wait_for(custom_objects, "churn-bad", lambda o: status(o).get("phase") in ("Failed", "Verified"))
    assert status(obj)["phase"] == "Failed"
    assert cond(obj, "Ready")["reason"] == "DigestMismatch"
    ev = wait_event(core_api, "churn-bad", "DigestMismatch")
    assert ev.type == "Warning"
    assert wrong in ev.message


def test_unreachable_artifact_backs_off_then_verifies(custom_objects, core_api, tmp_path):
    path = tmp_path / "late.joblib"
    data = b"arrives later"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-late", path.as_uri(), digest))
    obj = wait_for(custom_objects, "churn-late", lambda o: cond(o, "Ready").get("reason") == "ArtifactUnreachable")
    assert status(obj)["phase"] == "Pending"
    assert status(obj)["verifyAttempts"] == 1
    wait_event(core_api, "churn-late", "ArtifactUnreachable")
    # Backoff, not a hot loop: 5 s after the first failure, still one attempt.
    time.sleep(2.0)
    assert status(custom_objects.get(MODEL_VERSION, "default", "churn-late"))["verifyAttempts"] == 1
    path.write_bytes(data)
    obj = wait_for(custom_objects, "churn-late", lambda o: status(o).get("phase") == "Verified", timeout=30)
    assert status(obj)["verifyAttempts"] <= 3


def test_promotion_requires_approval_and_archives_previous(custom_objects, core_api, artifact):
    uri1, d1 = artifact(b"v1", "v1.joblib")
    uri2, d2 = artifact(b"v2", "v2.joblib")
    custom_objects.create(
        MODEL_VERSION, "default", model_version("churn-v1", uri1, d1, stage="Production", approval=approval())
    )
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-v2", uri2, d2, version="2"))
    wait_for(custom_objects, "churn-v1", lambda o: status(o).get("stage") == "Production")
    wait_for(custom_objects, "churn-v2", lambda o: status(o).get("phase") == "Verified")

    # Refused: no approval. Stage unchanged, condition and Warning Event say why.
    custom_objects.patch(MODEL_VERSION, "default", "churn-v2", {"spec": {"stage": "Production"}})
    obj = wait_for(custom_objects, "churn-v2", lambda o: cond(o, "StageSynced").get("reason") == "ApprovalRequired")
    assert status(obj)["stage"] == "None"
    assert cond(obj, "StageSynced")["status"] == "False"
    assert "approval" in cond(obj, "StageSynced")["message"]
    assert wait_event(core_api, "churn-v2", "TransitionRefused").type == "Warning"
    assert status(custom_objects.get(MODEL_VERSION, "default", "churn-v1"))["stage"] == "Production"

    # Approved: v2 is Production, v1 Archived, both histories say so.
    custom_objects.patch(MODEL_VERSION, "default", "churn-v2", {"spec": {"approval": approval("bob")}})
    v2 = wait_for(custom_objects, "churn-v2", lambda o: status(o).get("stage") == "Production")
    v1 = wait_for(custom_objects, "churn-v1", lambda o: status(o).get("stage") == "Archived")
    assert v1["spec"]["stage"] == "Archived"
    assert v2["status"]["history"][-1]["actor"] == "bob"
    assert "churn-v1" in v2["status"]["history"][-1]["message"]
    assert v1["status"]["history"][-1]["to"] == "Archived"
    assert "churn-v2" in v1["status"]["history"][-1]["message"]
    wait_event(core_api, "churn-v1", "Superseded")
    productions = [
        o["metadata"]["name"]
        for o in custom_objects.list(MODEL_VERSION, "default")
        if status(o).get("stage") == "Production"
    ]
    assert productions == ["churn-v2"]


def test_invalid_spec_is_rejected_naming_the_field(custom_objects, artifact):
    uri, _ = artifact(b"x")
    with pytest.raises(Rejected) as err:
        custom_objects.create(MODEL_VERSION, "default", model_version("bad-digest", uri, "md5:abc"))
    assert "422" in str(err.value)
    assert "spec.artifact.digest" in str(err.value)


def test_artifact_is_immutable_but_stage_is_not(custom_objects, artifact):
    uri, digest = artifact(b"immutable")
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-imm", uri, digest))
    wait_for(custom_objects, "churn-imm", lambda o: status(o).get("phase") == "Verified")
    with pytest.raises(Rejected) as err:
        custom_objects.patch(
            MODEL_VERSION, "default", "churn-imm", {"spec": {"artifact": {"digest": "sha256:" + "1" * 64}}}
        )
    assert "artifact is immutable" in str(err.value)
    custom_objects.patch(MODEL_VERSION, "default", "churn-imm", {"spec": {"stage": "Staging"}})
    wait_for(custom_objects, "churn-imm", lambda o: status(o).get("stage") == "Staging")
