"""`kubectl get` shows kube-apiserver's server-side columns for built-ins (real kubectl, sandbox Tables)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.sandbox import ServerThread, printers
from tests.integration.sandbox.test_kubectl import Kubectl

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


def _ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(out: str) -> list[list[str]]:  # ages are 10 minutes or more: shown in whole minutes, stable
    """kubectl's columns: cells are separated by at least two spaces (header cells have single spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    with ServerThread(port=0) as server:
        yield Kubectl(server.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "cache")


def _apply(kubectl: Kubectl, *objs: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input="".join(yaml.safe_dump(o) + "---\n" for o in objs))


def _status(kubectl: Kubectl, kind: str, name: str, status: dict[str, Any]) -> None:
    kubectl("patch", kind, name, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))


@pytest.mark.timeout(60)
def test_kubectl_get_events_shows_kubes_columns(kubectl: Kubectl) -> None:
    def event(name: str, **extra: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name}, **extra}

    _apply(
        kubectl,
        event("verified", type="Normal", reason="ArtifactVerified", message="digest verified  ",
              involvedObject={"kind": "ModelVersion", "name": "iris-v1", "namespace": "default"},
              source={"component": "modelops"}, firstTimestamp=_ago(3630), lastTimestamp=_ago(630), count=3),
        event("failed", type="Warning", reason="BackOff", message="restarting",
              involvedObject={"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{server}"},
              eventTime=_ago(1230)[:-1] + ".000000Z", reportingComponent="kubelet", reportingInstance="node-1"),
    )  # fmt: skip
    rows = _table(kubectl("get", "events").stdout)
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(rows[1:]) == [
        ["10m", "Normal", "ArtifactVerified", "modelversion/iris-v1", "digest verified"],
        ["20m", "Warning", "BackOff", "pod/web-1", "restarting"],
    ]
    wide = _table(kubectl("get", "events", "-o", "wide").stdout)
    assert wide[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN",
                       "COUNT", "NAME"]  # fmt: skip
    assert sorted(wide[1:]) == [
        ["10m", "Normal", "ArtifactVerified", "modelversion/iris-v1", "modelops", "digest verified", "60m", "3",
         "verified"],
        ["20m", "Warning", "BackOff", "pod/web-1", "spec.containers{server}", "kubelet, node-1", "restarting", "20m",
         "1", "failed"],
    ]  # fmt: skip


@pytest.mark.timeout(60)
def test_kubectl_get_workloads_and_services(kubectl: Kubectl) -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "server", "image": "ghcr.io/modelops/modelops:1"}, {"name": "proxy", "image": "envoy:1"}]}}  # fmt: skip
    pod_spec = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}
    _apply(
        kubectl,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1"}, "spec": template["spec"]},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-5d8"},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train"},
         "spec": {"template": {"spec": pod_spec}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "name": "http"},
                                                         {"port": 9090, "protocol": "UDP", "name": "m"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
         "spec": {"type": "ExternalName", "externalName": "db.example.com"}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 41234}]}]},
    )  # fmt: skip
    ip = json.loads(kubectl("get", "service", "web", "-o", "json").stdout)["spec"]["clusterIP"]

    pods = _table(kubectl("get", "pods").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1][:4] == ["web-1", "0/2", "Pending", "0"]
    started = _ago(100)
    _status(kubectl, "pod", "web-1", {"phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [
        {"name": "server", "ready": True, "restartCount": 2, "state": {"running": {"startedAt": started}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": _ago(930)}}},
        {"name": "proxy", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
    ]})  # fmt: skip
    pods = _table(kubectl("get", "pods", "-o", "wide").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    assert pods[1][:4] == ["web-1", "1/2", "CrashLoopBackOff", "2 (15m ago)"]
    assert pods[1][5:] == ["127.0.0.1", "<none>", "<none>", "<none>"]

    rs = _table(kubectl("get", "replicasets", "-o", "wide").stdout)
    assert rs[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rs[1][:4] == ["web-5d8", "3", "0", "0"]
    assert rs[1][5:] == ["server,proxy", "ghcr.io/modelops/modelops:1,envoy:1", "app=web"]

    jobs = _table(kubectl("get", "jobs").stdout)
    assert jobs[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1][:3] == ["train", "Running", "0/1"]
    _status(kubectl, "job", "train", {"startTime": _ago(200), "completionTime": _ago(95), "succeeded": 1,
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]})  # fmt: skip
    jobs = _table(kubectl("get", "jobs").stdout)
    assert jobs[1][:4] == ["train", "Complete", "1/1", "105s"]

    cron = _table(kubectl("get", "cronjobs").stdout)
    assert cron[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert cron[1][:6] == ["nightly", "0 3 * * *", "<none>", "False", "0", "<none>"]

    svc = _table(kubectl("get", "services", "-o", "wide").stdout)
    assert svc[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    assert sorted(r[:5] + r[6:] for r in svc[1:]) == [
        ["db", "ExternalName", "<none>", "db.example.com", "<none>", "<none>"],
        ["web", "ClusterIP", ip, "<none>", "80/TCP,9090/UDP", "app=web"],
    ]
    ep = _table(kubectl("get", "endpoints").stdout)
    assert ep[0] == ["NAME", "ENDPOINTS", "AGE"]
    assert ep[1][:2] == ["web", "127.0.0.1:41234"]


def _cs(name: str, state: dict[str, Any], ready: bool = False, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "state": state, "ready": ready, "restartCount": restarts}


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        ({"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]},
         {"phase": "Pending", "initContainerStatuses": [_cs("i", {"waiting": {"reason": "PodInitializing"}})]},
         ["0/1", "Init:0/1", "0"]),
        ({"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]},
         {"phase": "Pending", "initContainerStatuses": [_cs("i", {"terminated": {"exitCode": 3}}, restarts=1)]},
         ["0/1", "Init:ExitCode:3", "1"]),
        ({"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "c"}]},
         {"phase": "Running", "initContainerStatuses": [{**_cs("s", {"running": {}}, True), "started": True}],
          "containerStatuses": [_cs("c", {"running": {}}, True)]},
         ["2/2", "Running", "0"]),
        ({"containers": [{"name": "a"}, {"name": "b"}]},
         {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
          "containerStatuses": [_cs("a", {"running": {}}, True),
                                _cs("b", {"terminated": {"exitCode": 0, "reason": "Completed"}})]},
         ["1/2", "NotReady", "0"]),
        ({"containers": [{"name": "a"}]},
         {"phase": "Failed", "containerStatuses": [_cs("a", {"terminated": {"exitCode": 137, "signal": 9}})]},
         ["0/1", "Signal:9", "0"]),
        ({"containers": [{"name": "a"}]}, {"phase": "Succeeded", "reason": "Evicted"}, ["0/1", "Evicted", "0"]),
    ],
)  # fmt: skip
def test_pod_status_column(spec: dict[str, Any], status: dict[str, Any], cells: list[str]) -> None:
    """printPod's reason for what a pod is doing, the same table kubectl shows."""
    row = printers.PRINTERS[("", "pods")][1]({"metadata": {"name": "p"}, "spec": spec, "status": status})
    assert row[1:4] == cells
