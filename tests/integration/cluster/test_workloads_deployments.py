"""Deployments -> ReplicaSets -> Pods run by the workload runner: real `modelops serve` processes."""

from __future__ import annotations

import json
import re
import time

import requests

from tests.integration.cluster.conftest import (
    APPS,
    CORE,
    IMAGE,
    Obj,
    Workloads,
    alive,
    condition,
    container_status,
    ready,
    server_pod_spec,
)


def deployment(replicas: int, **spec_extra: object) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "churn"}},
            "template": {"metadata": {"labels": {"app": "churn"}}, "spec": server_pod_spec()},
            **spec_extra,
        },
    }


def settled(w: Workloads, replicas: int, generation: int) -> Obj | None:
    """The Deployment once its status says `replicas` ready, available and updated at `generation`."""
    d = w.api.get(f"{APPS}/deployments/churn")
    s = d.get("status") or {}
    want = {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    if any(s.get(key) != value for key, value in want.items()) or "unavailableReplicas" in s:
        return None
    progressing = condition(d, "Progressing")
    if progressing is None or progressing["reason"] != "NewReplicaSetAvailable":
        return None
    pods = [p for p in w.api.pods("app=churn")]
    if len(pods) != replicas or not all(ready(p) for p in pods):
        return None
    return d


def pid_of(pod: Obj) -> int:
    return int(container_status(pod)["containerID"].removeprefix("sandbox://"))


def host_port(pod: Obj) -> int:
    return int(json.loads(pod["metadata"]["annotations"]["sandbox.modelops.dev/host-ports"])["8080"])


def test_deployment_scaled_1_3_1_with_pods_replicaset_and_status(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{APPS}/deployments", deployment(1))
    d = w.api.wait(lambda: settled(w, 1, 1), within=30, what="1 replica ready")
    available = condition(d, "Available")
    assert available is not None
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    (rs,) = w.api.items(f"{APPS}/replicasets")
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"churn-{template_hash}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    (owner,) = rs["metadata"]["ownerReferences"]
    assert owner["kind"] == "Deployment"
    assert owner["uid"] == d["metadata"]["uid"]
    assert owner["controller"] is True
    assert owner["blockOwnerDeletion"] is True
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "churn", "pod-template-hash": template_hash}
    assert rs["status"] == {
        "replicas": 1,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "observedGeneration": 1,
    }

    (pod,) = w.api.pods("app=churn")
    assert re.fullmatch(rf"churn-{template_hash}-[a-z0-9]{{5}}", pod["metadata"]["name"])
    assert pod["metadata"]["labels"] == {"app": "churn", "pod-template-hash": template_hash}
    (pod_owner,) = pod["metadata"]["ownerReferences"]
    assert (pod_owner["kind"], pod_owner["name"], pod_owner["controller"]) == (
        "ReplicaSet",
        rs["metadata"]["name"],
        True,
    )
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == "127.0.0.1"
    assert container_status(pod)["image"] == IMAGE
    # the real model server answers on the mapped port, with the $(MODEL_VERSION) it was given
    model = requests.get(f"http://127.0.0.1:{host_port(pod)}/v2/models/churn", timeout=5).json()
    assert (model["name"], model["versions"]) == ("churn", ["1"])
    first_pid = pid_of(pod)
    assert alive(first_pid)

    w.api.patch(f"{APPS}/deployments/churn", {"spec": {"replicas": 3}})
    w.api.wait(lambda: settled(w, 3, 2), within=40, what="3 replicas ready")
    pods = w.api.pods("app=churn")
    assert len({host_port(p) for p in pods}) == 3
    assert w.api.get(f"{APPS}/replicasets/{rs['metadata']['name']}")["status"]["readyReplicas"] == 3
    assert len(w.api.items(f"{APPS}/replicasets")) == 1
    pids = {p["metadata"]["name"]: pid_of(p) for p in pods}

    w.api.patch(f"{APPS}/deployments/churn", {"spec": {"replicas": 1}})
    w.api.wait(lambda: settled(w, 1, 3), within=30, what="back to 1 replica")
    (kept,) = w.api.pods("app=churn")
    removed = [pid for name, pid in pids.items() if name != kept["metadata"]["name"]]
    w.api.wait(lambda: not any(alive(pid) for pid in removed), within=10, what="scaled-down processes gone")
    assert alive(pid_of(kept))


# an HTTP server that turns ready a second after it starts, answering its version
SLOW_READY = """
import http.server, json, os, time
port = json.loads(os.environ["MODELOPS_SANDBOX_PORT_MAP"])["8080"]
start = time.monotonic()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path != "/ready" or time.monotonic() - start > 1.0
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(os.environ["VERSION"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def web_template(version: str) -> Obj:
    container = {
        "name": "web",
        "image": IMAGE,
        "command": ["python", "-c", SLOW_READY],
        "env": [{"name": "VERSION", "value": version}],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    return {
        "metadata": {"labels": {"app": "churn"}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
    }


def test_rolling_update_stops_old_pods_only_after_new_ones_are_ready(workloads: Workloads) -> None:
    w = workloads
    w.api.create(
        f"{APPS}/deployments", {**deployment(2), "spec": {**deployment(2)["spec"], "template": web_template("1")}}
    )
    w.api.wait(lambda: settled(w, 2, 1), within=30, what="2 replicas ready")
    (old_rs,) = w.api.items(f"{APPS}/replicasets")

    w.api.patch(f"{APPS}/deployments/churn", {"spec": {"template": web_template("2")}})
    # defaults 25% / 25% of 2: surge 1, unavailable 0 -> never fewer than 2 ready pods, never more than 3
    samples = 0
    deadline = time.monotonic() + 30
    while settled(w, 2, 2) is None:
        pods = w.api.pods("app=churn")
        # as kube's Deployment controller counts: terminating pods (deletionTimestamp set) are not part of the surge
        live = [p for p in pods if p["status"].get("phase") in ("Pending", "Running")
                and not p["metadata"].get("deletionTimestamp")]  # fmt: skip
        assert sum(1 for p in live if ready(p)) >= 2, [p["metadata"]["name"] for p in live]
        assert len(live) <= 3
        samples += 1
        assert time.monotonic() < deadline, "rollout did not finish within 30 s"
        time.sleep(0.05)
    assert samples > 0

    rss = {rs["metadata"]["name"]: rs for rs in w.api.items(f"{APPS}/replicasets")}
    assert len(rss) == 2
    old = rss.pop(old_rs["metadata"]["name"])
    (new,) = rss.values()
    assert old["spec"]["replicas"] == 0
    assert old["status"]["replicas"] == 0
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    d = w.api.get(f"{APPS}/deployments/churn")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    for pod in w.api.pods("app=churn"):
        assert pod["metadata"]["labels"]["pod-template-hash"] == new["metadata"]["labels"]["pod-template-hash"]
        assert requests.get(f"http://127.0.0.1:{host_port(pod)}/", timeout=5).text == "2"
    events = sorted(w.api.items(f"{CORE}/events"), key=lambda e: int(e["metadata"]["resourceVersion"]))
    messages = [e["message"] for e in events if e["reason"] == "ScalingReplicaSet"]
    old_name, new_name = old_rs["metadata"]["name"], new["metadata"]["name"]
    # kube's sequence for 2 replicas, surge 1, unavailable 0
    assert messages == [
        f"Scaled up replica set {old_name} from 0 to 2",
        f"Scaled up replica set {new_name} from 0 to 1",
        f"Scaled down replica set {old_name} from 2 to 1",
        f"Scaled up replica set {new_name} from 1 to 2",
        f"Scaled down replica set {old_name} from 1 to 0",
    ]


def sleeper_deployment(name: str, replicas: int, marker: str, **spec_extra: object) -> Obj:
    container: Obj = {
        "name": "main",
        "image": IMAGE,
        "command": ["sleep", "300"],
        "env": [{"name": "M", "value": marker}],
    }
    container.update(spec_extra.pop("container", {}))  # type: ignore[call-overload]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
            **spec_extra,
        },
    }


def test_recreate_stops_every_old_pod_before_new_ones_start(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{APPS}/deployments", sleeper_deployment("rec", 2, "a", strategy={"type": "Recreate"}))

    def available(n: int, generation: int) -> bool:
        s = w.api.get(f"{APPS}/deployments/rec").get("status") or {}
        return (
            s.get("observedGeneration") == generation
            and s.get("availableReplicas") == n
            and s.get("updatedReplicas") == n
        )

    w.api.wait(lambda: available(2, 1), what="2 available")
    (old_rs,) = w.api.items(f"{APPS}/replicasets")
    w.api.patch(
        f"{APPS}/deployments/rec", {"spec": {"template": sleeper_deployment("rec", 2, "b")["spec"]["template"]}}
    )
    deadline = time.monotonic() + 30
    while not available(2, 2):
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in w.api.pods("app=rec")}
        assert len(hashes) <= 1, hashes  # never old and new pods at once
        assert time.monotonic() < deadline, "Recreate did not finish within 30 s"
        time.sleep(0.05)
    old = w.api.get(f"{APPS}/replicasets/{old_rs['metadata']['name']}")
    assert old["spec"]["replicas"] == 0


def test_progress_deadline_exceeded_when_pods_never_become_ready(workloads: Workloads) -> None:
    w = workloads
    never_ready = {"readinessProbe": {"tcpSocket": {"port": 7}, "periodSeconds": 1}, "ports": [{"containerPort": 7}]}
    w.api.create(
        f"{APPS}/deployments", sleeper_deployment("stuck", 1, "a", progressDeadlineSeconds=1, container=never_ready)
    )

    def timed_out() -> Obj | None:
        d = w.api.get(f"{APPS}/deployments/stuck")
        c = condition(d, "Progressing")
        return d if c is not None and c["reason"] == "ProgressDeadlineExceeded" else None

    d = w.api.wait(timed_out, what="Progressing=False ProgressDeadlineExceeded")
    progressing = condition(d, "Progressing")
    assert progressing is not None
    (rs,) = w.api.items(f"{APPS}/replicasets")
    assert progressing["status"] == "False"
    assert progressing["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    available = condition(d, "Available")
    assert available is not None
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert d["status"]["unavailableReplicas"] == 1
    assert "readyReplicas" not in d["status"]
