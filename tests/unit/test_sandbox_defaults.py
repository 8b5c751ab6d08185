"""Tables for the sandbox's built-in defaulting (modelops.sandbox.defaults), checked against kube's defaults.go."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from modelops.sandbox import defaults

Obj = dict[str, Any]

TEMPLATE_SPEC = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}


def container(**extra: Any) -> Obj:
    return {"name": "c", "image": "app:1", **extra}


def defaulted_container(**extra: Any) -> Obj:
    return {
        "name": "c",
        "image": "app:1",
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
        **extra,
    }


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("docker.io/library/nginx", "Always"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "0" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "0" * 64, "Always"),
        ("Not/Valid", "IfNotPresent"),
        ("", "IfNotPresent"),
        (None, "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: Any, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, TEMPLATE_SPEC),
        (
            {"restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0},
            {**TEMPLATE_SPEC, "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0},
        ),
        ({"serviceAccount": "runner"}, {**TEMPLATE_SPEC, "serviceAccount": "runner", "serviceAccountName": "runner"}),
        (
            {"containers": [container(ports=[{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}])]},
            {**TEMPLATE_SPEC, "containers": [defaulted_container(
                ports=[{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])]},
        ),
        (
            {"initContainers": [container(imagePullPolicy="Never", resources={"limits": {"cpu": "1"}})]},
            {**TEMPLATE_SPEC, "initContainers": [
                defaulted_container(imagePullPolicy="Never", resources={"limits": {"cpu": "1"}})]},
        ),
        (
            {"containers": [container(livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
                                      startupProbe={"grpc": {"port": 9000}},
                                      lifecycle={"preStop": {"httpGet": {"port": 80}}})]},
            {**TEMPLATE_SPEC, "containers": [defaulted_container(
                livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5, "timeoutSeconds": 1,
                               "successThreshold": 1, "failureThreshold": 3},
                startupProbe={"grpc": {"port": 9000, "service": ""}, "timeoutSeconds": 1, "periodSeconds": 10,
                              "successThreshold": 1, "failureThreshold": 3},
                lifecycle={"preStop": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}}})]},
        ),
        (
            {"volumes": [
                {"name": "a"},
                {"name": "b", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "c", "hostPath": {"path": "/tmp"}},
                {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            ]},
            {**TEMPLATE_SPEC, "volumes": [
                {"name": "a", "emptyDir": {}},
                {"name": "b", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "c", "hostPath": {"path": "/tmp", "type": ""}},
                {"name": "d", "downwardAPI": {"defaultMode": 420, "items": [
                    {"path": "n", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}]}},
                {"name": "e", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]}},
            ]},
        ),
    ],
)  # fmt: skip
def test_pod_template_spec(given: Obj, expected: Obj) -> None:
    spec = copy.deepcopy(given)
    defaults.pod_spec(spec)
    assert spec == expected


def test_a_pod_gets_more_than_a_template() -> None:
    obj: Obj = {"spec": {"hostNetwork": True, "containers": [container(
        ports=[{"containerPort": 8080}], resources={"limits": {"cpu": "1", "memory": "1Gi"}})]}}  # fmt: skip
    defaults.apply_defaults(("", "pods"), obj)
    [c] = obj["spec"]["containers"]
    assert obj["spec"]["enableServiceLinks"] is True
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert c["ports"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]
    assert defaults.qos_class(obj["spec"]) == "Guaranteed"


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
)
def test_qos_class(resources: list[Obj], qos: str) -> None:
    spec = {"containers": [container(resources=r) for r in resources]}
    assert defaults.qos_class(spec) == qos


@pytest.mark.parametrize(
    ("key", "spec", "expected"),
    [
        (("apps", "deployments"), {}, {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}),
        (("apps", "deployments"), {"replicas": 0, "strategy": {"type": "Recreate"}},
         {"replicas": 0, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "strategy": {"type": "Recreate"}}),
        (("apps", "deployments"), {"strategy": {"rollingUpdate": {"maxSurge": 0}}},
         {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
          "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}}}),
        (("apps", "deployments"), {"strategy": None, "replicas": None}, {"replicas": 1, "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}),
        (("apps", "replicasets"), {}, {"replicas": 1}),
        (("apps", "daemonsets"), {}, {"revisionHistoryLimit": 10,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}),
        (("apps", "statefulsets"), {"updateStrategy": {"type": "OnDelete"}}, {"replicas": 1,
            "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}),
        (("batch", "jobs"), {}, {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": False, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False}),
        (("batch", "jobs"), {"parallelism": 4, "backoffLimitPerIndex": 1, "completionMode": "Indexed",
                             "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                             "onPodConditions": [{"type": "DisruptionTarget"}]}]}},
         {"parallelism": 4, "backoffLimit": 2**31 - 1, "backoffLimitPerIndex": 1, "completionMode": "Indexed",
          "suspend": False, "podReplacementPolicy": "Failed", "manualSelector": False,
          "podFailurePolicy": {"rules": [{"action": "Ignore",
                                          "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}}),
        (("batch", "cronjobs"), {"schedule": "* * * * *"}, {"schedule": "* * * * *", "concurrencyPolicy": "Allow",
            "suspend": False, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1}),
        (("", "services"), {"ports": [{"port": 80, "targetPort": 0}]}, {"type": "ClusterIP",
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}),
        (("", "services"), {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}, {"type": "LoadBalancer",
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": True}),
        (("", "services"), {"type": "ExternalName", "externalName": "db.example.com",
                            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}},
         {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}),
        (("", "persistentvolumeclaims"), {}, {"volumeMode": "Filesystem"}),
        (("", "configmaps"), {"x": 1}, {"x": 1}),
    ],
)  # fmt: skip
def test_kind_defaults(key: tuple[str, str], spec: Obj, expected: Obj) -> None:
    obj = {"metadata": {"name": "x"}, "spec": copy.deepcopy(spec)}
    defaults.apply_defaults(key, obj)
    assert obj["spec"] == expected


def test_templates_get_pod_defaults_and_a_null_creation_timestamp() -> None:
    obj: Obj = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [container()]}}}}}}
    defaults.apply_defaults(("batch", "cronjobs"), obj)
    job = obj["spec"]["jobTemplate"]
    assert job["metadata"] == {"creationTimestamp": None}
    assert job["spec"]["template"]["metadata"] == {"creationTimestamp": None}
    assert job["spec"]["template"]["spec"] == {**TEMPLATE_SPEC, "containers": [defaulted_container()]}


def test_secret_type_and_endpoint_ports() -> None:
    secret: Obj = {"data": {}}
    defaults.apply_defaults(("", "secrets"), secret)
    assert secret["type"] == "Opaque"
    ep: Obj = {"subsets": [{"ports": [{"port": 80}]}]}
    defaults.apply_defaults(("", "endpoints"), ep)
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]


@pytest.mark.parametrize("body", [{}, {"spec": None}, {"spec": []}, {"spec": {"template": "x", "containers": 3}},
                                  {"spec": {"containers": ["x", None], "volumes": [1]}}])  # fmt: skip
@pytest.mark.parametrize("key", sorted(defaults.DEFAULTERS))
def test_malformed_bodies_are_left_to_validation(key: tuple[str, str], body: Obj) -> None:
    defaults.apply_defaults(key, copy.deepcopy(body))


def test_job_selector_generation() -> None:
    obj: Obj = {"metadata": {"name": "train", "uid": "u-1"}, "spec": {"template": {"spec": {}}}}
    defaults.prepare_create(("batch", "jobs"), obj)
    labels = {"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "train",
              "controller-uid": "u-1", "job-name": "train"}  # fmt: skip
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == labels
    assert obj["metadata"]["labels"] == labels
    manual: Obj = {"metadata": {"name": "m", "uid": "u-2"},
              "spec": {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}}  # fmt: skip
    defaults.prepare_create(("batch", "jobs"), manual)
    assert manual["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert manual["metadata"]["labels"] == {"a": "b"}


def svc(name: str, **spec: Any) -> Obj:
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"ports": [{"name": "p", "port": 80}], **spec}}


def test_service_allocation_is_unique_and_kept_on_update() -> None:
    existing: list[Obj] = []
    for n in range(50):
        s = svc(f"s{n}", type="NodePort")
        assert defaults.prepare_create(("", "services"), s, existing) == []
        existing.append(s)
    ips = [s["spec"]["clusterIP"] for s in existing]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in existing]
    assert len(set(ips)) == len(set(ports)) == 50
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") for ip in ips)
    assert "10.96.0.1" not in ips
    old = existing[0]
    new = svc("s0", type="NodePort")  # the manifest as written: no clusterIP, no nodePort
    assert defaults.prepare_update(("", "services"), new, old, existing) == []
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert new["spec"]["clusterIPs"] == [old["spec"]["clusterIP"]]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"clusterIP": "10.96.0.1"}, "spec.clusterIPs",
         'Invalid value: ["10.96.0.1"]: failed to allocate IP 10.96.0.1: provided IP is already allocated'),
        ({"clusterIP": "10.200.0.1"}, "spec.clusterIPs",
         'Invalid value: ["10.200.0.1"]: failed to allocate IP 10.200.0.1: the provided IP (10.200.0.1) is not in '
         "the valid range. The range of valid IPs is 10.96.0.0/12"),
        ({"clusterIP": "ten"}, "spec.clusterIPs[0]",
         'Invalid value: "ten": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
        ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}, "spec.ports[0].nodePort",
         "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "spec.ports[0].nodePort",
         "Invalid value: 30080: provided port is already allocated"),
    ],
)  # fmt: skip
def test_service_allocation_refusals(spec: Obj, field: str, message: str) -> None:
    kubernetes = svc("kubernetes", clusterIP="10.96.0.1", type="NodePort", ports=[{"port": 443, "nodePort": 30080}])
    causes = defaults.prepare_create(("", "services"), svc("x", **spec), [kubernetes])
    assert [(c.reason, c.field, c.detail) for c in causes] == [("FieldValueInvalid", field, message)]
