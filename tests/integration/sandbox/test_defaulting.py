"""Built-in kinds come back defaulted, as from kube-apiserver: what an operator diffing live objects meets."""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

import pytest

from tests.integration.sandbox.conftest import Client

NS = "/namespaces/default"
DEP = f"/apis/apps/v1{NS}/deployments"
SVC = f"/api/v1{NS}/services"
JOBS = f"/apis/batch/v1{NS}/jobs"
CRON = f"/apis/batch/v1{NS}/cronjobs"
PODS = f"/api/v1{NS}/pods"
STS = f"/apis/apps/v1{NS}/statefulsets"
DS = f"/apis/apps/v1{NS}/daemonsets"
RS = f"/apis/apps/v1{NS}/replicasets"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
Obj = dict[str, Any]


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "minReadySeconds": 5,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/modelops/modelops:0.1.0",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        }
                    ],
                    "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}}],
                },
            },
        },
    }


def service(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}], **spec},
    }


def job(name: str = "train", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "trainer"}]}},
            **spec,
        },
    }


def _paths(a: Any, b: Any, at: str = "") -> set[str]:
    """Dotted paths where `b` differs from `a` (lists by index, null as absent): what a naive diff reports."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in a.keys() | b.keys():
            out |= _paths(a.get(k), b.get(k), f"{at}.{k}" if at else k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _paths(x, y, f"{at}[{i}]")}
    return set() if a == b else {at}


async def test_deployment_is_defaulted_as_kube_apiserver_does(http: Client) -> None:
    live = await http.ok("POST", DEP, deployment())
    spec = live["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["minReadySeconds"] == 5
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"] == {"creationTimestamp": None, "labels": {"app": "web"}}
    assert {k: pod[k] for k in ("restartPolicy", "terminationGracePeriodSeconds", "dnsPolicy", "schedulerName")} == {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
    }
    assert pod["securityContext"] == {}
    assert "enableServiceLinks" not in pod  # a Pod default, not a template one
    [c] = pod["containers"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {}
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "metadata.name"}
    assert pod["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
    ]
    assert await http.ok("GET", f"{DEP}/web") == live


async def test_operator_diff_sees_the_defaulted_fields_and_reapply_writes_nothing(http: Client) -> None:
    """The case that matters: desired vs live differs exactly in the server's defaults, so an operator
    that patches whenever live != desired patches on every reconcile; re-sending desired is a no-op."""
    desired = deployment()
    live = await http.ok("POST", DEP, copy.deepcopy(desired))
    c = "spec.template.spec.containers[0]"
    diff = {p for p in _paths(desired, live) if not p.startswith(("metadata.", "status"))}
    assert diff == {
        "spec.replicas",
        "spec.strategy",
        "spec.revisionHistoryLimit",
        "spec.progressDeadlineSeconds",
        "spec.template.spec.restartPolicy",
        "spec.template.spec.terminationGracePeriodSeconds",
        "spec.template.spec.dnsPolicy",
        "spec.template.spec.securityContext",
        "spec.template.spec.schedulerName",
        f"{c}.terminationMessagePath",
        f"{c}.terminationMessagePolicy",
        f"{c}.imagePullPolicy",
        f"{c}.resources",
        f"{c}.ports[0].protocol",
        f"{c}.readinessProbe.httpGet.scheme",
        f"{c}.readinessProbe.timeoutSeconds",
        f"{c}.readinessProbe.periodSeconds",
        f"{c}.readinessProbe.successThreshold",
        f"{c}.readinessProbe.failureThreshold",
        f"{c}.env[0].valueFrom.fieldRef.apiVersion",
        "spec.template.spec.volumes[0].emptyDir",
        "spec.template.spec.volumes[1].configMap.defaultMode",
    }
    rv = live["metadata"]["resourceVersion"]
    spec_only = {"spec": desired["spec"]}
    for method, body, kw in [
        ("PUT", {**desired, "metadata": {**desired["metadata"], "resourceVersion": rv}}, {}),
        ("PATCH", spec_only, {"ctype": MERGE}),
        ("PATCH", spec_only, {"ctype": SMP}),
        ("PATCH", [{"op": "remove", "path": "/spec/revisionHistoryLimit"}], {"ctype": JSONP}),
    ]:
        out = await http.ok(method, f"{DEP}/web", body, **kw)
        assert out["metadata"]["resourceVersion"] == rv, (method, kw)
        assert out["metadata"]["generation"] == 1
        assert out["spec"]["revisionHistoryLimit"] == 10
    # server-side apply: the second apply of the same manifest by the same manager writes nothing. (A
    # fieldRef is atomic, so an applied one without its defaulted apiVersion would replace the live one,
    # count as a change and move the manager's time, on a real cluster too.)
    applied = copy.deepcopy({**desired, "metadata": {**desired["metadata"], "name": "web2"}})
    applied["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    first = await http.ok("PATCH", f"{DEP}/web2", json.dumps(applied), ctype=APPLY, fieldManager="gitops")
    assert first["spec"]["progressDeadlineSeconds"] == 600
    again = await http.ok("PATCH", f"{DEP}/web2", json.dumps(applied), ctype=APPLY, fieldManager="gitops")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_update_defaults_what_a_patch_removes_and_keeps_what_is_set(http: Client) -> None:
    await http.ok("POST", DEP, deployment())
    patch = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}, "replicas": 3}}
    out = await http.ok("PATCH", f"{DEP}/web", patch, ctype=MERGE)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["generation"] == 2
    out = await http.ok("PATCH", f"{DEP}/web", [{"op": "remove", "path": "/spec/replicas"}], ctype=JSONP)
    assert out["spec"]["replicas"] == 1


async def test_service_gets_a_cluster_ip_kept_on_update(http: Client) -> None:
    a = await http.ok("POST", SVC, service("a"))
    b = await http.ok("POST", SVC, service("b", ports=[{"port": 9000, "targetPort": "metrics"}]))
    spec = a["spec"]
    ip = spec["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12")
    assert ip != b["spec"]["clusterIP"]
    assert spec["clusterIPs"] == [ip]
    assert {
        k: spec[k] for k in ("type", "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy")
    } == {
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    assert spec["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    assert b["spec"]["ports"] == [{"port": 9000, "targetPort": "metrics", "protocol": "TCP"}]
    # a PUT of the manifest as written (no clusterIP) keeps the allocated one and writes nothing
    rv = a["metadata"]["resourceVersion"]
    body = {**service("a"), "metadata": {"name": "a", "resourceVersion": rv}}
    out = await http.ok("PUT", f"{SVC}/a", body)
    assert out["spec"]["clusterIP"] == ip
    assert out["metadata"]["resourceVersion"] == rv


async def test_service_cluster_ip_and_node_ports_are_checked(http: Client) -> None:
    taken = (await http.ok("POST", SVC, service("a")))["spec"]["clusterIP"]
    status, err = await http.post(SVC, service("b", clusterIP=taken))
    assert status == 422
    assert err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.clusterIPs",
            "message": f'Invalid value: ["{taken}"]: failed to allocate IP {taken}: provided IP is already allocated',
        }
    ]
    status, err = await http.post(SVC, service("c", clusterIP="192.168.0.1"))
    assert status == 422
    assert "is not in the valid range. The range of valid IPs is 10.96.0.0/12" in err["message"]
    headless = await http.ok("POST", SVC, service("h", clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]
    np = await http.ok("POST", SVC, service("np", type="NodePort"))
    port = np["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    assert np["spec"]["externalTrafficPolicy"] == "Cluster"
    ext = await http.ok("POST", SVC, service("ext", type="ExternalName", externalName="db.example.com", ports=[]))
    assert "clusterIP" not in ext["spec"]
    assert "ipFamilies" not in ext["spec"]


async def test_job_is_defaulted_and_gets_a_generated_selector(http: Client) -> None:
    live = await http.ok("POST", JOBS, job())
    uid = live["metadata"]["uid"]
    spec = live["spec"]
    assert {k: spec[k] for k in spec if k not in ("template", "selector")} == {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "manualSelector": False,
    }
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    generated = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "train",
        "controller-uid": uid,
        "job-name": "train",
    }
    assert spec["template"]["metadata"] == {"creationTimestamp": None, "labels": generated}
    assert live["metadata"]["labels"] == generated
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["imagePullPolicy"] == "Always"  # no tag means :latest
    # a Job whose selector the user wrote without manualSelector is still refused
    bad = job("bad", selector={"matchLabels": {"a": "b"}})
    status, err = await http.post(JOBS, bad)
    assert status == 422
    assert [c["field"] for c in err["details"]["causes"]] == ["spec.selector"]


async def test_cronjob_is_defaulted_down_to_its_pod_template(http: Client) -> None:
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job()["spec"]}},
    }
    live = await http.ok("POST", CRON, body)
    spec = live["spec"]
    assert {k: spec[k] for k in spec if k != "jobTemplate"} == {
        "schedule": "0 3 * * *",
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }
    jt = spec["jobTemplate"]
    assert jt["metadata"] == {"creationTimestamp": None}
    assert set(jt["spec"]) == {"template"}  # the Job defaults apply to Jobs, not to a CronJob's template
    pod = jt["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


@pytest.mark.parametrize(
    ("image", "policy"),
    [("app", "Always"), ("app:latest", "Always"), ("app:1.2", "IfNotPresent"), ("localhost:5000/app", "Always"),
     ("app@sha256:" + "a" * 64, "IfNotPresent"), ("app:1@sha256:" + "a" * 64, "IfNotPresent")],
)  # fmt: skip
async def test_pod_defaults(http: Client, image: str, policy: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": image, "resources": {"limits": {"cpu": "1"}}}],
        },
    }
    live = await http.ok("POST", PODS, body)
    spec = live["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["enableServiceLinks"] is True
    assert spec["containers"][0]["imagePullPolicy"] == policy
    assert spec["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert live["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    # and what the default admission plugins add to a Pod (ServiceAccount, Priority, DefaultTolerationSeconds)
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert spec["tolerations"] == [
        {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for t in ("not-ready", "unreachable")
    ]


async def test_statefulset_daemonset_replicaset_basics(http: Client) -> None:
    tmpl = deployment()["spec"]
    sts = await http.ok("POST", STS, {"metadata": {"name": "db"}, "spec": {**tmpl, "serviceName": "db",
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}})  # fmt: skip
    s = sts["spec"]
    assert (s["replicas"], s["revisionHistoryLimit"], s["podManagementPolicy"]) == (1, 10, "OrderedReady")
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    [pvc] = s["volumeClaimTemplates"]
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["status"] == {"phase": "Pending"}
    ds = await http.ok("POST", DS, {"metadata": {"name": "agent"}, "spec": tmpl})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}  # fmt: skip
    assert ds["spec"]["revisionHistoryLimit"] == 10
    rs = await http.ok("POST", RS, {"metadata": {"name": "web-1"}, "spec": tmpl})
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
