"""A canary whose model server crash-loops, on the sandbox cluster (real pods: `modelops serve`
processes run by the sandbox kubelet, restarted with back-off as kubelet does).

The crash version's artifact is verified (its digest matches) but is no model: every start of
its server fails to load it and exits. The canary never gets a ready pod, so the stable never
gives a pod up and no request reaches the crash version; at the progress deadline the rollout is
aborted and rolled back instead of waiting for ever."""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION
from tests.integration.live.scenarios import healthy_on, in_namespace, model_deployment
from tests.support.cluster import SandboxCluster, wait_until
from tests.support.rollout_checks import RolloutRecorder, assert_rolled_back_without_promotion

NS = "fault-crashloop"


def crash_version(tmp: Path) -> dict:
    junk = b"these bytes are no joblib model\n"
    path = tmp / "crash.joblib"
    path.write_bytes(junk)
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "churn-crash"},
        "spec": {
            "modelName": "churn",
            "version": "9",
            "framework": "sklearn",
            "artifact": {
                "uri": path.as_uri(),
                "digest": "sha256:" + hashlib.sha256(junk).hexdigest(),
                "format": "joblib",
            },
        },
    }


def restarts(cluster: SandboxCluster) -> int:
    pods = cluster.core.list_namespaced_pod(NS, label_selector="modelops.dev/track=canary").items
    return sum(cs.restart_count or 0 for p in pods for cs in (p.status.container_statuses or []))


def test_a_crash_looping_canary_is_rolled_back(sandbox_cluster: SandboxCluster, tmp_path: Path):
    c = sandbox_cluster
    in_namespace(c, NS, "registry/churn-v1.yaml")
    c.create(MODEL_VERSION, crash_version(tmp_path), NS)
    c.wait_status(
        MODEL_VERSION, "churn-crash", lambda s: s.get("phase") == "Verified", "crash version Verified", 60, NS
    )
    md = model_deployment("churn", {"versionRef": "churn-v1"}, 1, [{"setWeight": 50}, {"pause": {}}],
                          progressDeadline="20s")  # fmt: skip
    c.create(MODEL_DEPLOYMENT, md, NS)
    c.wait_status(MODEL_DEPLOYMENT, "churn", healthy_on("churn-v1"), "Healthy on churn-v1", 150, NS)
    rec = RolloutRecorder(c.apps, c.custom, NS, "churn")
    c.patch(MODEL_DEPLOYMENT, "churn", {"spec": {"model": {"versionRef": "churn-crash"}}}, NS)
    wait_until(lambda: restarts(c) >= 1, "the canary's server crashed and was restarted", within=120)
    st = c.wait_status(MODEL_DEPLOYMENT, "churn", lambda s: s.get("phase") == "RolledBack", "RolledBack", 120, NS)
    recorded = rec.stop()
    stable, canary, weights = recorded
    assert stable == [("churn-v1", 1)]  # never gave its pod up: no ready canary pod to give it to
    assert canary[0] == ("churn-crash", 1)
    assert weights == [0]  # no traffic ever counted on the crash version
    assert_rolled_back_without_promotion(recorded, st, "churn-v1", "churn-crash", replicas=1)
    ready = next(x for x in st["conditions"] if x["type"] == "Ready")
    assert ready["reason"] == "ProgressDeadlineExceeded", ready
    assert st["tracks"]["stable"]["readyReplicas"] == 1  # churn-v1 served throughout
