"""A canary rollback reaches the registry: the rolled-back version leaves Production and the
version that keeps serving stable traffic is Production again (the real operator, in-process,
against the sandbox API server)."""

from __future__ import annotations

import socket
import time

from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_POLICY, MODEL_VERSION
from tests.integration.rollout.conftest import (
    NS,
    Cluster,
    cond,
    model_deployment,
    model_version,
    status,
    wait,
    wait_event,
    wait_status,
    wait_verified,
)

APPROVAL = {"approvedBy": "bob", "approvedAt": "2026-01-01T00:00:00Z", "reason": "AUC +2%"}


def _closed_port_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends


def _register(
    c: Cluster,
    name: str,
    version: str,
    model: str,
    auc: float,
    profile: str | None = None,
    accuracy: float | None = None,
    **kw: object,
) -> None:
    body = model_version(c.tmp, name, version, model=model, **kw)  # type: ignore[arg-type]
    body["spec"]["metrics"] = {"auc": auc} if accuracy is None else {"auc": auc, "accuracy": accuracy}
    if profile is not None:
        body["spec"]["referenceProfile"] = profile
    c.api.create(MODEL_VERSION, NS, body)
    wait_verified(c.api, name)


def _mv(c: Cluster, name: str) -> dict:
    return c.api.get(MODEL_VERSION, NS, name)


def _stage(c: Cluster, name: str) -> tuple[str | None, str | None]:
    mv = _mv(c, name)
    return (mv["spec"].get("stage"), (mv.get("status") or {}).get("stage"))


def test_a_rolled_back_version_leaves_production_and_the_stable_is_production_again(cluster: Cluster):
    c, name = cluster, "regback"
    metrics = [{"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "1s", "errorLimit": 1}]
    _register(c, f"{name}-v1", "1", name, 0.80, stage="Production", approved=True)
    md = model_deployment(
        name, model={"modelName": name}, steps=[{"setWeight": 50}, {"analysis": {"metrics": metrics}}]
    )
    md["spec"]["prometheus"] = {"address": _closed_port_address()}  # every measurement errs: the analysis fails
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    wait_status(c.api, lambda s: s.get("phase") == "Healthy" and s["stableVersion"] == f"{name}-v1", "v1", name)

    _register(c, f"{name}-v2", "2", name, 0.95)
    c.api.patch(MODEL_VERSION, NS, f"{name}-v2", {"spec": {"stage": "Production", "approval": APPROVAL}})
    wait(lambda: _stage(c, f"{name}-v1") == ("Archived", "Archived"), "v1 superseded by v2's promotion")
    st = wait_status(c.api, lambda s: s.get("phase") == "RolledBack", "v2 rolled back by its analysis", name)
    assert (st["stableVersion"], st.get("canaryVersion"), st["failedVersion"]) == (f"{name}-v1", None, f"{name}-v2")

    # the registry follows: v2 archived, v1 (still serving) back in Production, spec and status alike
    wait(lambda: _stage(c, f"{name}-v2") == ("Archived", "Archived"), "v2 archived after its rollback")
    wait(lambda: _stage(c, f"{name}-v1") == ("Production", "Production"), "v1 restored to Production")
    v2, v1 = _mv(c, f"{name}-v2"), _mv(c, f"{name}-v1")
    demoted = [h for h in v2["status"]["history"] if h.get("reason") == "RolledBack"]
    assert [(h["from"], h["to"], h["actor"]) for h in demoted] == [("Production", "Archived", "modelops-operator")]
    assert demoted[0]["message"] == (
        f"stage Production -> Archived: ModelDeployment {name} rolled its canary back (AnalysisFailed); "
        f"{name}-v1 keeps serving its stable traffic"
    )
    restored = [h for h in v1["status"]["history"] if h.get("reason") == "RolledBack"]
    assert [(h["from"], h["to"]) for h in restored] == [("Archived", "Production")]
    assert wait_event(c.core, "RolledBack", f"{name}-v2").type == "Warning"
    assert wait_event(c.core, "RolledBack", f"{name}-v1").type == "Normal"
    # kstatus on both versions: the operator has seen the spec.stage it wrote, nothing is stalled
    for vname in (f"{name}-v1", f"{name}-v2"):
        wait(
            lambda vname=vname: (m := _mv(c, vname))["status"].get("observedGeneration") == m["metadata"]["generation"],
            f"{vname} observed",
        )
        mv = _mv(c, vname)
        assert (cond(mv["status"], "Ready")["status"], cond(mv["status"], "Stalled")["status"]) == ("True", "False")
        assert cond(mv["status"], "StageSynced")["status"] == "True"

    # the deployment keeps the rollback on record (Stalled, its alert) though its target is v1 again
    st = wait_status(c.api, lambda s: "the target is" in (s.get("message") or ""), "target back on v1", name)
    assert (st["phase"], st["stableVersion"], st.get("canaryVersion")) == ("RolledBack", f"{name}-v1", None)
    assert (cond(st, "Stalled")["status"], cond(st, "Stalled")["reason"]) == ("True", "AnalysisFailed")

    # the next challenger faces v1 (0.80), which serves, not the rolled-back v2 (0.95)
    c.api.create(
        MODEL_POLICY,
        NS,
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "ModelPolicy",
            "metadata": {"name": name},
            "spec": {"modelName": name, "championChallenger": {"metrics": [{"metric": "auc", "tolerance": 0.01}]}},
        },
    )
    _register(c, f"{name}-v3", "3", name, 0.85)
    c.api.patch(MODEL_VERSION, NS, f"{name}-v3", {"spec": {"stage": "Staging"}})
    wait(lambda: _stage(c, f"{name}-v3") == ("Staging", "Staging"), "v3 passes against v1")
    assert cond(_mv(c, f"{name}-v3")["status"], "Validated")["status"] == "True"
    assert status(c.api, name)["phase"] == "RolledBack"


def test_a_drift_monitor_follows_its_deployments_stable_version(cluster: Cluster):
    """resolvedReference and registeredMetrics are the stable version's, from the moment a
    promotion makes a new version stable; a deployment event that leaves the stable as it was
    writes nothing on the monitor."""
    c, name = cluster, "follow"
    monitor_name = f"{name}-drift"
    _register(
        c, f"{name}-v1", "1", name, 0.80, stage="Production", approved=True, profile="file:///p/v1.json", accuracy=0.9
    )
    md = model_deployment(name, model={"modelName": name}, steps=[{"setWeight": 50}])
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    wait_status(c.api, lambda s: s.get("phase") == "Healthy" and s["stableVersion"] == f"{name}-v1", "v1", name)
    c.api.create(
        DRIFT_MONITOR,
        NS,
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": monitor_name},
            "spec": {"target": {"deployment": name}, "schedule": "*/30 * * * *", "policy": {"action": "alert"}},
        },
    )

    def monitor_status() -> dict:
        return c.api.get(DRIFT_MONITOR, NS, monitor_name).get("status") or {}

    st = wait(lambda: (s := monitor_status()).get("resolvedReference") and s, "the monitor resolved v1")
    assert (st["resolvedReference"], st["registeredMetrics"]) == ("file:///p/v1.json", {"auc": 0.8, "accuracy": 0.9})

    _register(c, f"{name}-v2", "2", name, 0.95, profile="file:///p/v2.json")
    c.api.patch(MODEL_VERSION, NS, f"{name}-v2", {"spec": {"stage": "Production", "approval": APPROVAL}})
    wait_status(c.api, lambda s: s.get("phase") == "Healthy" and s["stableVersion"] == f"{name}-v2", "v2", name)
    st = wait(
        lambda: (s := monitor_status()).get("resolvedReference") == "file:///p/v2.json" and s,
        "the monitor follows the new stable",
        timeout=5,
    )
    assert st["registeredMetrics"] == {"auc": 0.95}  # accuracy is v1's, not v2's: gone
    assert cond(st, "Ready")["status"] == "True"
    event = wait_event(c.core, "ReferenceChanged", monitor_name)
    assert event.message == f"reference file:///p/v1.json -> file:///p/v2.json (ModelVersion {name}-v2)"

    written = c.api.get(DRIFT_MONITOR, NS, monitor_name)["metadata"]["resourceVersion"]
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"metadata": {"labels": {"team": "churn"}}})  # stable unchanged
    wait_status(c.api, lambda s: s.get("phase") == "Healthy", "still Healthy", name)
    time.sleep(1.0)
    assert c.api.get(DRIFT_MONITOR, NS, monitor_name)["metadata"]["resourceVersion"] == written
