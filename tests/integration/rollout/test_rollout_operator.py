"""ModelDeployment end to end against the sandbox API server: the real operator (in-process),
the test playing the Deployment controller (pods become ready when it says so). The module
shares one cluster; each test works on its own ModelDeployment and model."""

from __future__ import annotations

import socket
import time

import pytest

from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, Rejected
from modelops.telemetry import REGISTRY
from tests.integration.rollout.conftest import (
    NS,
    Cluster,
    cond,
    model_deployment,
    model_version,
    replicas,
    status,
    wait,
    wait_event,
    wait_status,
)

GATEWAY = "gateway.networking.k8s.io"


def metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, **labels})


def reconciles(result: str) -> float:
    return REGISTRY.get_sample_value("modelops_reconcile_total", {"kind": "ModelDeployment", "result": result}) or 0


def _rvs(c: Cluster, name: str) -> dict[str, str]:
    selector = f"modelops.dev/deployment={name}"
    out = {
        f"svc/{s.metadata.name}": s.metadata.resource_version
        for s in c.core.list_namespaced_service(NS, label_selector=selector).items
    }
    out |= {
        f"deploy/{d.metadata.name}": d.metadata.resource_version
        for d in c.apps.list_namespaced_deployment(NS, label_selector=selector).items
    }
    out |= {
        f"mv/{m['metadata']['name']}": m["metadata"]["resourceVersion"]
        for m in c.api.list(MODEL_VERSION, NS)
        if m["spec"]["modelName"] == name
    }
    return out


def test_first_deploy_then_an_unchanged_deployment_writes_nothing(cluster: Cluster):
    c, name = cluster, "first"
    # quantities the API server may write back in another form ("0.5" CPU is "500m")
    resources = {"requests": {"cpu": "0.5", "memory": "0.5Gi"}, "limits": {"memory": "1024Mi"}}
    st = c.deploy_v1(
        name, spec={"resources": resources, "server": {"env": [{"name": "OMP_NUM_THREADS", "value": "1"}]}}
    )
    assert (st["stableVersion"], st.get("canaryVersion"), st["canaryWeight"]) == ("first-v1", None, 0)
    assert st["tracks"]["stable"]["replicas"] == 4
    assert st["tracks"]["stable"]["readyReplicas"] == 4
    assert cond(st, "Ready")["status"] == "True"
    assert cond(st, "Available")["status"] == "True"
    assert st["observedGeneration"] == 1
    stable = c.apps.read_namespaced_deployment("first-stable", NS)
    assert stable.spec.replicas == 4
    assert stable.metadata.owner_references[0].kind == "ModelDeployment"
    labels = stable.spec.template.metadata.labels
    assert (labels["modelops.dev/deployment"], labels["modelops.dev/track"], labels["modelops.dev/version"]) == (
        "first",
        "stable",
        "first-v1",
    )
    assert replicas(c.apps, "first-canary") is None  # a first deploy has no canary
    services = {s.metadata.name: s for s in c.core.list_namespaced_service(NS).items}
    assert {"first", "first-stable", "first-canary"} <= set(services)
    assert services["first"].spec.selector == {"modelops.dev/deployment": "first"}
    wait_event(c.core, "Deploying", name)
    mv = c.api.get(MODEL_VERSION, NS, "first-v1")
    assert mv["status"]["deployments"] == [{"namespace": NS, "name": name, "track": "stable", "weight": 100}]
    assert metric("modelops_rollout_phase", deployment=name, phase="Healthy") == 1
    assert metric("modelops_rollout_phase", deployment=name, phase="RolledBack") == 0

    # Unchanged: metadata-only changes make the operator reconcile; it must write nothing,
    # whatever the API server defaulted in the children.
    before, st_before = _rvs(c, name), status(c.api, name)
    count = reconciles("success")
    for poke in ("1", "2"):
        c.api.patch(MODEL_DEPLOYMENT, NS, name, {"metadata": {"labels": {"poke": poke}}})
    wait(lambda: reconciles("success") >= count + 2, "two more reconciles")
    assert _rvs(c, name) == before
    assert status(c.api, name) == st_before


def test_version_change_walks_the_steps_with_replicas_per_track(cluster: Cluster):
    c, name = cluster, "steps"
    c.deploy_v1(name)
    c.register("steps-v2", "2", name)
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"model": {"versionRef": "steps-v2"}}})
    st = wait_status(c.api, lambda s: s.get("currentStepIndex") == 1, "step 1 (pause until promoted)", name)
    assert (st["phase"], st["canaryVersion"], st["canaryWeight"]) == ("Paused", "steps-v2", 25)
    assert (replicas(c.apps, "steps-stable"), replicas(c.apps, "steps-canary")) == (3, 1)
    canary = c.apps.read_namespaced_deployment("steps-canary", NS)
    assert canary.spec.template.metadata.labels["modelops.dev/version"] == "steps-v2"
    args = canary.spec.template.spec.containers[0].args
    assert args[args.index("--track") + 1] == "canary"
    mv2 = c.api.get(MODEL_VERSION, NS, "steps-v2")
    assert mv2["status"]["deployments"] == [{"namespace": NS, "name": name, "track": "canary", "weight": 25}]
    assert metric("modelops_rollout_canary_weight", deployment=name) == 25
    assert metric("modelops_rollout_step", deployment=name) == 1
    # `modelops rollout promote`: advance past step 1, written to the status subresource
    c.api.patch_status(MODEL_DEPLOYMENT, NS, name, {"promoteStep": 1})
    st = wait_status(c.api, lambda s: s.get("currentStepIndex", 0) >= 3, "step 3 (1s pause)", name)
    assert st["canaryWeight"] == 50
    assert (replicas(c.apps, "steps-stable"), replicas(c.apps, "steps-canary")) == (2, 2)
    st = wait_status(c.api, lambda s: s.get("phase") == "Healthy", "promoted", name)
    assert (st["stableVersion"], st.get("canaryVersion")) == ("steps-v2", None)
    assert (replicas(c.apps, "steps-stable"), replicas(c.apps, "steps-canary")) == (4, 0)
    stable = c.apps.read_namespaced_deployment("steps-stable", NS)
    assert stable.spec.template.metadata.labels["modelops.dev/version"] == "steps-v2"
    assert [h["event"] for h in st["history"]][-3:] == ["RolloutStarted", "Promoting", "Promoted"]
    wait_event(c.core, "Promoted", name)
    wait(lambda: not (c.api.get(MODEL_VERSION, NS, "steps-v1").get("status") or {}).get("deployments"), "v1 cleared")


def test_abort_by_status_patch_rolls_back_and_retry_starts_again(cluster: Cluster):
    c, name = cluster, "abort"
    c.deploy_v1(name)
    c.register("abort-v2", "2", name)
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"model": {"versionRef": "abort-v2"}}})
    wait_status(c.api, lambda s: s.get("currentStepIndex") == 1, "step 1", name)
    c.api.patch_status(MODEL_DEPLOYMENT, NS, name, {"abort": True})  # `modelops rollout abort`
    st = wait_status(c.api, lambda s: s.get("phase") == "RolledBack", "rolled back", name)
    assert (st["failedVersion"], st.get("canaryVersion"), st["canaryWeight"], st["abort"]) == (
        "abort-v2",
        None,
        0,
        False,
    )
    assert cond(st, "Stalled")["status"] == "True"
    assert cond(st, "Ready")["status"] == "False"
    wait(lambda: (replicas(c.apps, "abort-stable"), replicas(c.apps, "abort-canary")) == (4, 0), "stable back to 4")
    event = wait_event(c.core, "RolledBack", name)
    assert event.type == "Warning"
    assert "abort-v2 aborted by request" in event.message
    assert metric("modelops_rollout_phase", deployment=name, phase="RolledBack") == 1
    # `modelops rollout retry`: the same version starts again
    c.api.patch_status(MODEL_DEPLOYMENT, NS, name, {"abort": False, "failedVersion": None})
    wait_status(c.api, lambda s: s.get("canaryVersion") == "abort-v2", "retried", name)


def test_registry_driven_promotion_starts_a_rollout_with_no_other_edit(cluster: Cluster):
    c, name = cluster, "registry"
    c.register("registry-v1", "1", name, stage="Production", approved=True)
    md = model_deployment(name, model={"modelName": name}, steps=[{"setWeight": 50}, {"pause": {}}])
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    wait_status(c.api, lambda s: s.get("phase") == "Healthy" and s["stableVersion"] == "registry-v1", "v1", name)
    c.register("registry-v2", "2", name)
    assert status(c.api, name).get("canaryVersion") is None  # stage None: not eligible
    approval = {"approvedBy": "bob", "approvedAt": "2026-01-01T00:00:00Z", "reason": "AUC +2%"}
    c.api.patch(MODEL_VERSION, NS, "registry-v2", {"spec": {"stage": "Production", "approval": approval}})
    st = wait_status(c.api, lambda s: s.get("canaryVersion") == "registry-v2", "rollout started by the registry", name)
    assert st["stableVersion"] == "registry-v1"
    assert c.api.get(MODEL_DEPLOYMENT, NS, name)["metadata"]["generation"] == 1  # no edit of the deployment


def test_version_not_eligible_is_a_condition_and_event(cluster: Cluster):
    c, name = cluster, "missing"
    c.api.create(MODEL_DEPLOYMENT, NS, model_deployment(name, model={"versionRef": "missing-v9"}))
    st = wait_status(c.api, lambda s: cond(s, "Ready").get("reason") == "NotFound", "NotFound", name)
    assert st["phase"] == "Pending"
    assert cond(st, "Stalled")["status"] == "True"
    assert "ModelVersion missing-v9 not found" in cond(st, "Ready")["message"]
    assert wait_event(c.core, "NotFound", name).type == "Warning"


def test_missing_secret_holds_the_deploy_until_it_exists(cluster: Cluster):
    c, name = cluster, "secret"
    c.register("secret-v1", "1", name)
    md = model_deployment(name, model={"versionRef": "secret-v1"})
    md["spec"]["server"] = {"artifactCredentials": {"name": "secret-creds"}}
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    st = wait_status(c.api, lambda s: cond(s, "Ready").get("reason") == "SecretNotFound", "SecretNotFound", name)
    assert "Secret secret-creds (spec.server.artifactCredentials) not found" in st["message"]
    assert replicas(c.apps, "secret-stable") is None
    wait_event(c.core, "SecretNotFound", name)
    c.core.create_namespaced_secret(
        NS, {"metadata": {"name": "secret-creds"}, "stringData": {"AWS_ACCESS_KEY_ID": "x"}}
    )
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"metadata": {"labels": {"poke": "1"}}})
    wait(lambda: replicas(c.apps, "secret-stable") == 4, "deployed once the Secret exists")
    env_from = c.apps.read_namespaced_deployment("secret-stable", NS).spec.template.spec.containers[0].env_from
    assert env_from[0].secret_ref.name == "secret-creds"


def test_gateway_routing_holds_without_a_gateway_then_writes_exact_weights(cluster: Cluster):
    c, name = cluster, "gw"
    c.register("gw-v1", "1", name)
    c.register("gw-v2", "2", name)
    routing = {"gatewayApi": {"httpRoute": "gw-route", "parentRefs": [{"name": "gw-public"}]}}
    md = model_deployment(
        name, model={"versionRef": "gw-v1"}, steps=[{"setWeight": 30}, {"pause": {}}], trafficRouting=routing
    )
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    st = wait_status(c.api, lambda s: cond(s, "Ready").get("reason") == "GatewayNotFound", "GatewayNotFound", name)
    assert "Gateway gw-public" in st["message"]
    wait_event(c.core, "GatewayNotFound", name)
    gateway = {
        "apiVersion": f"{GATEWAY}/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw-public"},
        "spec": {"gatewayClassName": "sandbox", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    c.custom.create_namespaced_custom_object(GATEWAY, "v1", NS, "gateways", gateway)
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"metadata": {"labels": {"poke": "1"}}})
    wait_status(c.api, lambda s: s.get("phase") == "Healthy", "deployed", name)

    def weights() -> list[int]:
        route = c.custom.get_namespaced_custom_object(GATEWAY, "v1", NS, "httproutes", "gw-route")
        return [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]

    assert weights() == [100, 0]
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"model": {"versionRef": "gw-v2"}}})
    wait_status(c.api, lambda s: s.get("currentStepIndex") == 1, "at 30%", name)
    assert weights() == [70, 30]


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ({"steps": [{"setWeight": 50}, {"setWeight": 20}]}, "setWeight must not decrease across steps"),
        ({"steps": [{"setWeight": 50, "pause": {}}]}, "a step sets exactly one of setWeight, pause, analysis"),
        ({"steps": [{"setWeight": 150}]}, "spec.strategy.canary.steps[0].setWeight"),
        ({"steps": [{"pause": {"duration": "soon"}}]}, "spec.strategy.canary.steps[0].pause.duration"),
        ({"steps": []}, "spec.strategy.canary.steps"),
        ({"steps": [{"setWeight": 5}], "maxSurge": "lots"}, "must be a count (0 or more) or a percent"),
    ],
)
def test_bad_steps_are_rejected_by_the_api_server_with_422(cluster: Cluster, canary, message):
    with pytest.raises(Rejected) as err:
        cluster.api.create(MODEL_DEPLOYMENT, NS, model_deployment("rejected", **canary))
    assert str(err.value).startswith("422")
    assert message in str(err.value)


def test_an_invalid_spec_the_api_server_let_through_is_a_condition_and_one_event(lax_operator):
    api, core = lax_operator
    md = model_deployment()
    md["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 80}, {"setWeight": 20}]
    api.create(MODEL_DEPLOYMENT, NS, md)
    st = wait_status(api, lambda s: cond(s, "Ready").get("reason") == "InvalidSpec", "InvalidSpec")
    assert "setWeight must not decrease" in cond(st, "Ready")["message"]
    assert cond(st, "Stalled")["status"] == "True"
    assert st["observedGeneration"] == 1
    wait_event(core, "InvalidSpec")
    count = reconciles("invalid")
    api.patch(MODEL_DEPLOYMENT, NS, "churn", {"metadata": {"labels": {"poke": "1"}}})
    wait(lambda: reconciles("invalid") > count, "reconciled again")
    time.sleep(0.5)  # kopf posts Events in batches: give a second one the chance to appear
    assert sum(1 for e in core.list_namespaced_event(NS).items if e.reason == "InvalidSpec") == 1
    assert status(api)["conditions"] == st["conditions"]


def test_analysis_against_an_unreachable_prometheus_rolls_back_naming_the_address(cluster: Cluster):
    """The operator measures through modelops.k8s.analysis: a Prometheus that cannot be reached is
    an Error, never a pass; past errorLimit the analysis fails and the canary is rolled back."""
    c, name = cluster, "prom"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends
    metrics = [{"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "1s", "errorLimit": 1}]
    c.register(f"{name}-v1", "1", name)
    c.register(f"{name}-v2", "2", name)
    md = model_deployment(
        name, model={"versionRef": f"{name}-v1"}, steps=[{"setWeight": 50}, {"analysis": {"metrics": metrics}}]
    )
    md["spec"]["prometheus"] = {"address": address}
    c.api.create(MODEL_DEPLOYMENT, NS, md)
    wait_status(c.api, lambda s: s.get("phase") == "Healthy", "v1", name)
    c.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"model": {"versionRef": f"{name}-v2"}}})
    st = wait_status(c.api, lambda s: s.get("phase") == "RolledBack", "rolled back by analysis", name)
    run = st["analysisRuns"][-1]
    assert (run["stepIndex"], run["version"], run["phase"]) == (1, f"{name}-v2", "Failed")
    assert [m["phase"] for m in run["measurements"]] == ["Error", "Error"]
    assert address in run["measurements"][0]["message"]
    assert cond(st, "Stalled")["reason"] == "AnalysisFailed"
    assert address in cond(st, "Stalled")["message"]
    assert (replicas(c.apps, f"{name}-stable"), replicas(c.apps, f"{name}-canary")) == (4, 0)


def test_without_the_gateway_api_installed_the_deploy_holds(lax_operator, tmp_path):
    api, core = lax_operator
    api.create(MODEL_VERSION, NS, model_version(tmp_path, "nogw-v1", "1", model="nogw"))
    routing = {"gatewayApi": {"httpRoute": "nogw", "parentRefs": [{"name": "public"}]}}
    api.create(MODEL_DEPLOYMENT, NS, model_deployment("nogw", model={"versionRef": "nogw-v1"}, trafficRouting=routing))
    st = wait_status(api, lambda s: cond(s, "Ready").get("reason") == "GatewayAPIMissing", "GatewayAPIMissing", "nogw")
    assert "the HTTPRoute API (gateway.networking.k8s.io/v1) is not installed" in st["message"]
    assert cond(st, "Stalled")["status"] == "True"
    assert wait_event(core, "GatewayAPIMissing", "nogw").type == "Warning"
