"""The Helm chart, rendered by the real Helm engine (helm-python-sdk) for several value sets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from ._support import CHART_DIR, NAMESPACE, RELEASE, ROOT, VALUE_SETS, Renderer

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: the CRDs' CEL rules carry
# `fieldPath`, which 1.28 introduced; older API servers reject it under strict field validation) and
# the newest schema shipped.
KUBE_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
HOOK = "helm.sh/hook"


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def installed(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `helm install` creates: the manifests without hooks (the `helm test` resources)."""
    return [m for m in manifests if HOOK not in (m["metadata"].get("annotations") or {})]


def hooks(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if HOOK in (m["metadata"].get("annotations") or {})]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: dict[str, Any] = containers[0]
    return container


def pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec anywhere in a manifest (Deployment, Job, CronJob, bare Pod...)."""
    if isinstance(node, dict):
        if "containers" in node:
            yield node
        for value in node.values():
            yield from pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from pod_specs(value)


Permission = tuple[str, str, str]  # (apiGroup, resource, verb)


def permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


MANAGE = ("get", "list", "watch", "create", "patch", "update", "delete")
CRS = ("modelversions", "modeldeployments", "driftmonitors", "modelpolicies")

EXPECTED_NAMESPACED: set[Permission] = (
    {("modelops.dev", r, v) for r in CRS for v in ("get", "list", "watch", "patch", "update")}
    | {("modelops.dev", f"{r}/status", v) for r in CRS for v in ("get", "patch", "update")}
    | {("modelops.dev", f"{r}/finalizers", "update") for r in CRS}
    | {("modelops.dev", "modelversions", "create")}
    | {(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")}
    | {("apps", "deployments", v) for v in MANAGE}
    | {("", r, v) for r in ("services", "configmaps", "serviceaccounts") for v in MANAGE}
    | {("batch", r, v) for r in ("cronjobs", "jobs") for v in MANAGE}
    | {("rbac.authorization.k8s.io", r, v) for r in ("roles", "rolebindings") for v in MANAGE}
    | {("gateway.networking.k8s.io", "httproutes", v) for v in MANAGE}
    | {("gateway.networking.k8s.io", "gateways", "get")}
    | {("", "secrets", "get")}
)
EXPECTED_CLUSTER: set[Permission] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
} | {("", "namespaces", v) for v in ("get", "list", "watch")}

# What the operator grants the drift job in its Role: RBAC escalation prevention requires the
# operator to hold every one of these itself.
DRIFT_JOB_ROLE: set[Permission] = {
    ("modelops.dev", "driftmonitors/status", "get"),
    ("modelops.dev", "driftmonitors/status", "patch"),
    ("modelops.dev", "driftmonitors", "get"),
    ("", "secrets", "get"),
}


# ---------------------------------------------------------------- lint and schema validation


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_strict_is_clean(name: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[name], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_helm_lint_reports_schema_violations() -> None:
    report = helm.lint(CHART_DIR, {"replicas": "two"}, strict=True, namespace=NAMESPACE)
    text = " ".join([*report["errors"], *(m["error"] for m in report["messages"] if m["severity"] >= 3)])
    assert "replicas" in text


def test_every_manifest_is_valid_kubernetes(
    manifests: list[dict[str, Any]], value_set: tuple[str, dict[str, Any]]
) -> None:
    validated = set()
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue  # no schema in kubernetes-validate; checked by test_service_monitor / test_alerts
        if manifest["kind"] == "CustomResourceDefinition" and value_set[0] != "default":
            validated.add(manifest["kind"])
            continue  # the same objects in every value set (large: validated once)
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        validated.add(manifest["kind"])
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",  # the helm test Job's
        "Job",
        "Service",
        "NetworkPolicy",
    } <= validated


def test_oldest_supported_version_is_the_charts_kube_version() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        assert chart.metadata["kubeVersion"] == f">={KUBE_VERSIONS[0]}-0"
    # And the CRDs really need it: one release older rejects them.
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.dev.yaml").read_text())
    with pytest.raises(kubernetes_validate.ValidationError, match="fieldPath"):
        kubernetes_validate.validate(crd, "1.27.0", strict=True)


def test_strict_validation_catches_unknown_fields(render: Renderer) -> None:
    # The check above is only worth something if a typo in a template fails it.
    deployment = one(render({}), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


def test_every_manifest_is_namespaced_or_cluster_scoped_explicitly(manifests: list[dict[str, Any]]) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
    for manifest in manifests:
        has_namespace = "namespace" in manifest["metadata"]
        assert has_namespace != (manifest["kind"] in cluster_scoped), manifest["metadata"]["name"]


@pytest.mark.parametrize(
    "values",
    [
        {"replicas": "two"},
        {"replicas": 2},  # standalone kopf: two operators would both reconcile
        {"replicaCount": 1},  # unknown top-level key
        {"image": {"repository": "x", "tagg": "1"}},  # unknown nested key
        {"image": {"repository": "x", "pullPolicy": "Sometimes"}},
        {"image": {"repository": "x", "digest": "latest"}},
        {"watchNamespaces": ["Team_A"]},
        {"watchNamespaces": ["a", "a"]},
        {"metrics": {"service": {"port": 0}}},
        {"serviceMonitor": {"enabled": "yes"}},
        {"rbac": {"create": True, "clusterWide": True}},
        # Every object of the monitoring, CRD and test values is closed too: a typo fails.
        {"crds": {"enable": True}},
        {"crds": {"keep": "yes"}},
        {"podMonitor": {"enabled": True, "intervall": "15s"}},
        {"podMonitor": {"interval": "15 seconds"}},
        {"grafanaDashboard": {"enabled": True, "label": {"grafana_dashboard": "1"}}},
        {"grafanaDashboard": {"namespace": "Monitoring"}},
        {"prometheusRule": {"enabled": True, "additionalLabels": {}}},
        {"serviceMonitor": {"labels": {"release": 1}}},
        {"tests": {"enabled": True, "image": "busybox"}},
        {"tests": {"timeoutSeconds": 1}},
        {"grafana": {"enabled": True}},  # unknown top-level key near a real one
    ],
    ids=lambda v: yaml.safe_dump(v, default_flow_style=True).strip(),
)
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(chart.merge_values(values))
        # And an install refuses them, not just the explicit check.
        with pytest.raises(helm.HelmError):
            chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_values_schema_accepts_the_documented_value_sets(name: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.merge_values(VALUE_SETS[name]))


def test_values_schema_is_strict_everywhere() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        schema = chart.schema
        defaults = chart.values
    assert schema is not None
    assert schema["additionalProperties"] is False
    # Every top-level value is described by the schema, and every object of our own is closed.
    assert set(defaults) == set(schema["properties"])
    for key in (
        "image",
        "crds",
        "serviceAccount",
        "rbac",
        "metrics",
        "serviceMonitor",
        "podMonitor",
        "prometheusRule",
        "grafanaDashboard",
        "networkPolicy",
        "tests",
        "resources",
    ):
        assert schema["properties"][key]["additionalProperties"] is False, key
    assert schema["properties"]["metrics"]["properties"]["service"]["additionalProperties"] is False
    assert schema["properties"]["tests"]["properties"]["resources"]["additionalProperties"] is False
    # And every object default in values.yaml is described key by key (no open object of ours).
    for key, value in defaults.items():
        if isinstance(value, dict) and schema["properties"][key].get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"][key]["properties"]), key


# ---------------------------------------------------------------- the operator Deployment


def test_deployment_runs_one_standalone_operator(render: Renderer) -> None:
    deployment = one(render({}), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_cluster_wide_args_and_env(render: Renderer) -> None:
    container = operator_container(render({}))
    assert container["command"] == ["modelops", "run"]
    assert container["args"] == [
        "--all-namespaces",
        "--health-port",
        "8081",
        "--metrics-port",
        "8083",
        "--artifact-schemes",  # no file: the operator pod's own files are no artifact store
        "http,https,s3,gs,gcs,az,abfs,abfss",
        "--artifact-max-bytes",
        "10Gi",
        "--artifact-connect-timeout",
        "10",
        "--artifact-read-timeout",
        "30",
    ]
    assert container["image"] == "ghcr.io/modelops/modelops:0.1.0"  # tag defaults to appVersion
    env = {e["name"]: e for e in container["env"]}
    assert env["MODELOPS_IMAGE"]["value"] == container["image"]
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_namespaced_args(render: Renderer) -> None:
    container = operator_container(render(VALUE_SETS["namespaced"]))
    assert "--all-namespaces" not in container["args"]
    assert container["args"][:4] == ["--namespace", "team-a", "--namespace", "team-b"]


def test_image_tag_digest_and_extras(render: Renderer) -> None:
    digest = "sha256:" + "a" * 64
    container = operator_container(
        render(
            {
                "image": {"repository": "registry.example/mo", "tag": "1.2.3", "digest": digest},
                "extraArgs": ["--verbose"],
                "extraEnv": [{"name": "X", "value": "1"}],
            }
        )
    )
    assert container["image"] == f"registry.example/mo@{digest}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_IMAGE"] == container["image"]
    assert env["X"] == "1"
    assert container["args"][-1] == "--verbose"
    tagged = operator_container(render({"image": {"repository": "registry.example/mo", "tag": "1.2.3"}}))
    assert tagged["image"] == "registry.example/mo:1.2.3"


def test_probes_and_ports(render: Renderer) -> None:
    container = operator_container(render({}))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "metrics": 8083}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_resources_have_requests_and_limits(render: Renderer) -> None:
    resources = operator_container(render({}))["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) >= {"memory"}


def test_restricted_security_context_on_every_pod(manifests: list[dict[str, Any]]) -> None:
    specs = [spec for m in manifests for spec in pod_specs(m)]
    assert specs, "no pod spec rendered"
    for spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == 65532
        assert pod["runAsGroup"] == 65532
        assert pod["fsGroup"] == 65532
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is True  # the operator needs the API
        assert spec.get("hostNetwork", False) is False
        assert spec.get("hostPID", False) is False
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx.get("privileged", False) is False
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]


# ---------------------------------------------------------------- RBAC


def rbac_rules(manifests: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for manifest in manifests:
        for rule in manifest.get("rules", []):
            yield manifest, rule


def test_no_rbac_wildcards(manifests: list[dict[str, Any]]) -> None:
    rules = list(rbac_rules(manifests))
    assert rules
    for manifest, rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            for item in rule.get(field, []):
                assert "*" not in item, f"{manifest['kind']}/{manifest['metadata']['name']}: {field} {item!r}"
        assert "nonResourceURLs" not in rule


def test_no_escalation_verbs(manifests: list[dict[str, Any]]) -> None:
    for _manifest, rule in rbac_rules(manifests):
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_cluster_wide_rbac(render: Renderer) -> None:
    manifests = installed(render({}))
    assert by_kind(manifests, "Role") == []
    assert by_kind(manifests, "RoleBinding") == []
    roles = {r["metadata"]["name"]: r for r in by_kind(manifests, "ClusterRole")}
    assert permissions(roles[RELEASE]["rules"]) == EXPECTED_NAMESPACED
    assert permissions(roles[f"{RELEASE}-cluster"]["rules"]) == EXPECTED_CLUSTER
    bindings = {b["roleRef"]["name"]: b for b in by_kind(manifests, "ClusterRoleBinding")}
    assert set(bindings) == set(roles)
    sa = one(manifests, "ServiceAccount")["metadata"]
    for binding in bindings.values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["name"]


def test_namespaced_rbac_grants_only_the_watched_namespaces(render: Renderer) -> None:
    manifests = installed(render(VALUE_SETS["namespaced"]))
    roles = by_kind(manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert permissions(role["rules"]) == EXPECTED_NAMESPACED
    bindings = by_kind(manifests, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE}
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # Only kopf's cluster-scoped reads remain cluster-wide.
    cluster_roles = by_kind(manifests, "ClusterRole")
    assert [r["metadata"]["name"] for r in cluster_roles] == [f"{RELEASE}-cluster"]
    assert permissions(cluster_roles[0]["rules"]) == EXPECTED_CLUSTER


def test_operator_holds_what_it_grants_the_drift_job(render: Renderer) -> None:
    # Otherwise the API server rejects the drift job's Role (RBAC escalation prevention).
    roles = {r["metadata"]["name"]: r for r in by_kind(render({}), "ClusterRole")}
    assert permissions(roles[RELEASE]["rules"]) >= DRIFT_JOB_ROLE
    # ... and the retraining Job's Role: create/get of ModelVersions, get of its data Secret.
    assert permissions(roles[RELEASE]["rules"]) >= {
        ("modelops.dev", "modelversions", "create"),
        ("modelops.dev", "modelversions", "get"),
        ("", "secrets", "get"),
    }


def test_secrets_are_readable_by_name_only(render: Renderer) -> None:
    held = permissions(next(r for r in by_kind(render({}), "ClusterRole") if r["metadata"]["name"] == RELEASE)["rules"])
    assert {verb for group, resource, verb in held if (group, resource) == ("", "secrets")} == {"get"}
    assert not {p for p in held if p[1] in {"pods/exec", "nodes", "leases", "pods"}}


def test_rbac_can_be_disabled(render: Renderer) -> None:
    kinds = {m["kind"] for m in installed(render({"rbac": {"create": False}}))}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_existing_service_account(render: Renderer) -> None:
    manifests = installed(render({"serviceAccount": {"create": False, "name": "mine"}, "watchNamespaces": ["a"]}))
    assert by_kind(manifests, "ServiceAccount") == []
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert one(manifests, "RoleBinding")["subjects"][0]["name"] == "mine"


# ---------------------------------------------------------------- metrics, ServiceMonitor, PrometheusRule


def test_metrics_service_targets_the_operator(render: Renderer) -> None:
    manifests = render({})
    service = one(manifests, "Service")
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8083, "targetPort": "metrics", "protocol": "TCP"}]
    assert not {m["kind"] for m in manifests} & CUSTOM_KINDS  # all off by default


def test_service_monitor_selects_the_metrics_service(render: Renderer) -> None:
    manifests = render(VALUE_SETS["monitoring"])
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The operator's metrics carry the namespace of the resource they describe: honored, or
    # Prometheus would rename it exported_namespace and the alerts would name the wrong namespace.
    assert endpoint["honorLabels"] is True
    # The alerts select job="modelops", whatever the release or nameOverride.
    assert endpoint["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": "modelops"}]
    assert "jobLabel" not in monitor["spec"]


def test_pod_monitor_selects_the_model_server_pods(render: Renderer) -> None:
    from modelops.api.modeldeployment import ModelDeploymentSpec
    from modelops.core import model_server_manifests as servers
    from modelops.core.version_selection import VersionInfo

    monitor = one(render(VALUE_SETS["monitoring"]), "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}  # cluster-wide mode
    # The pods the operator builds for a ModelDeployment, both tracks: selected, and their
    # metrics port is the endpoint's.
    owner = servers.DeploymentRef(name="churn", namespace="team-a", uid="u-1")
    version = VersionInfo(name="churn-v2", model_name="churn", version="2", uri="s3://m/2", digest="sha256:" + "b" * 64)
    spec = ModelDeploymentSpec.model_validate({"model": {"versionRef": "churn-v2"}})
    options = servers.ServerOptions(image="ghcr.io/modelops/modelops:0.1.0")
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    for track in servers.TRACKS:
        pod = servers.build_track_deployment(owner, spec, track, version, 1, options)["spec"]["template"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["port"] in ports
    # Drift-check and retraining pods are not model servers (they serve no metrics).
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "model-server"


def test_pod_monitor_follows_the_watched_namespaces(render: Renderer) -> None:
    monitor = one(render({**VALUE_SETS["namespaced"], "podMonitor": {"enabled": True}}), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert monitor["metadata"]["namespace"] == NAMESPACE


def test_helm_test_hooks_are_least_privilege(render: Renderer) -> None:
    assert hooks(render({"tests": {"enabled": False}})) == []
    found = hooks(render({}))
    assert sorted(m["kind"] for m in found) == ["Job", "Role", "RoleBinding", "ServiceAccount"]
    for manifest in found:
        annotations = manifest["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert manifest["metadata"]["namespace"] == NAMESPACE
        # Its own labels: the operator's selectors (Service, NetworkPolicy, monitors) never match it.
        assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "helm-test"
    # The RBAC the Job needs exists before it (lower hook weight).
    weights = {m["kind"]: int(m["metadata"]["annotations"]["helm.sh/hook-weight"]) for m in found}
    assert weights["Job"] > max(w for k, w in weights.items() if k != "Job")
    role = one(found, "Role")
    crd_plurals = {c["spec"]["names"]["plural"] for c in repo_crds().values()}
    assert permissions(role["rules"]) == {("modelops.dev", r, "list") for r in crd_plurals} | {("", "pods", "list")}
    binding = one(found, "RoleBinding")
    sa = one(found, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    assert sa["automountServiceAccountToken"] is False  # only the test pod opts in
    job = one(found, "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    [container] = pod["containers"]
    assert container["image"] == operator_container(render({}))["image"]  # the project image, no other
    assert container["command"][:2] == ["python", "-c"]
    assert container["command"][2] == (CHART_DIR / "files" / "helm_test.py").read_text()


def test_service_monitor_needs_the_service() -> None:
    with helm.Chart.load(CHART_DIR) as chart, pytest.raises(helm.HelmRenderError, match=r"metrics\.service"):
        chart.render(
            {"serviceMonitor": {"enabled": True}, "metrics": {"service": {"enabled": False}}},
            name=RELEASE,
            namespace=NAMESPACE,
        )


def test_prometheus_rule_carries_the_alerts_file(render: Renderer) -> None:
    rule = one(render(VALUE_SETS["monitoring"]), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = yaml.safe_load((CHART_DIR / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == {"groups": alerts["groups"]}


# ---------------------------------------------------------------- CRDs and the plain install manifest


def repo_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        crds[crd["metadata"]["name"]] = crd
    assert crds, "crds/ is empty"
    return crds


def test_chart_renders_the_repo_crds(render: Renderer) -> None:
    # The copies the template reads are the generated crds/, byte for byte...
    repo = {p.name: p.read_bytes() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    chart = {p.name: p.read_bytes() for p in sorted((CHART_DIR / "files" / "crds").iterdir())}
    assert chart == repo, "charts/modelops/files/crds is stale: run `modelops crds --chart charts/modelops`"
    # ...and what the template renders is the same object, plus the release's labels and the keep policy.
    rendered = {c["metadata"]["name"]: c for c in by_kind(render({}), "CustomResourceDefinition")}
    expected = repo_crds()
    assert set(rendered) == set(expected)
    for name, crd in rendered.items():
        meta = crd.pop("metadata")
        source = expected[name]
        source_meta = source.pop("metadata")
        assert crd == source, name
        assert meta["name"] == source_meta["name"]
        assert source_meta["labels"].items() <= meta["labels"].items()
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta["labels"]["app.kubernetes.io/component"] == "crds"
        assert meta["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_crds_are_not_in_helms_install_only_directory() -> None:
    # crds/ would be installed once and never upgraded; the chart templates them instead.
    assert not (CHART_DIR / "crds").exists()
    with helm.Chart.load(CHART_DIR) as loaded:
        assert loaded.crds == []


def test_crd_values(render: Renderer) -> None:
    assert by_kind(render({"crds": {"enabled": False}}), "CustomResourceDefinition") == []
    unkept = by_kind(render({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert len(unkept) == 4
    assert all("annotations" not in c["metadata"] for c in unkept)
    argo = {"argocd.argoproj.io/sync-options": "Prune=false,ServerSideApply=true"}
    annotated = by_kind(render({"crds": {"annotations": argo}}), "CustomResourceDefinition")
    assert all(c["metadata"]["annotations"] == {**argo, "helm.sh/resource-policy": "keep"} for c in annotated)


def test_install_manifest_is_not_stale() -> None:
    # The documented regeneration command, run exactly as a user would.
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.render_chart"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    committed = (ROOT / "examples" / "install" / "modelops-operator.yaml").read_text()
    assert result.stdout == committed, (
        "examples/install/modelops-operator.yaml is stale: "
        "python -m tests.support.render_chart > examples/install/modelops-operator.yaml"
    )


def test_install_manifest_is_complete_and_valid(render: Renderer) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "install" / "modelops-operator.yaml").read_text()) if d]
    namespace = docs[0]
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # The default rendering, minus the CRDs (applied from crds/ first) and the helm test hooks.
    assert docs[1:] == installed(render({"crds": {"enabled": False}}))
    assert "CustomResourceDefinition" not in {d["kind"] for d in docs}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSIONS[-1], strict=True)
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE


def notes(values: dict[str, Any]) -> str:
    with helm.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values, name="ml", namespace="platform", is_install=True)
    return next(v for k, v in rendered.items() if k.endswith("NOTES.txt"))


NOTES_VALUES = [
    {},
    VALUE_SETS["namespaced"],
    VALUE_SETS["monitoring"],
    {"crds": {"enabled": False}, "tests": {"enabled": False}, "replicas": 0},
    {"crds": {"keep": False}, "prometheusRule": {"enabled": True}},
]


@pytest.mark.parametrize("values", NOTES_VALUES, ids=range(len(NOTES_VALUES)))
def test_notes_commands_work_without_a_checkout(values: dict[str, Any]) -> None:
    text = notes(values)
    # No path into this repository: whoever installed from a chart repository has none of them.
    for path in ("crds/", "charts/", "examples/", "tests/", "tests.support", "python -m", "docs/"):
        lines = [line for line in text.splitlines() if path in line and "github.com" not in line]
        assert lines == [], path
    # The next steps name this release, its namespace and its Deployment.
    assert "kubectl -n platform rollout status deployment/ml-modelops" in text
    assert "kubectl -n platform logs deployment/ml-modelops" in text
    assert "kubectl explain modelversion.spec" in text
    if values.get("tests", {}).get("enabled", True):
        assert "helm test ml -n platform" in text


def test_notes_follow_the_values() -> None:
    assert "helm.sh/resource-policy: keep" in notes({})
    assert "DELETES them" in notes({"crds": {"keep": False}})
    unmanaged = notes({"crds": {"enabled": False}})
    assert "not managed by this release" in unmanaged
    assert "--set crds.enabled=true" in unmanaged
    assert "--show-only templates/crds.yaml" in unmanaged
    assert "scaled to 0" in notes({"replicas": 0})
    monitoring = notes(VALUE_SETS["monitoring"])
    for line in ("ServiceMonitor ml-modelops", "PodMonitor ml-modelops-model-servers", "PrometheusRule ml-modelops"):
        assert line in monitoring
    assert "honor_labels" in notes({"prometheusRule": {"enabled": True}})  # scraped without our ServiceMonitor


def test_notes_name_the_mode() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        wide = chart.render({}, name=RELEASE, namespace=NAMESPACE)
        scoped = chart.render(VALUE_SETS["namespaced"], name=RELEASE, namespace=NAMESPACE)
    notes = next(v for k, v in wide.items() if k.endswith("NOTES.txt"))
    assert "cluster-wide" in notes
    notes = next(v for k, v in scoped.items() if k.endswith("NOTES.txt"))
    assert "team-a, team-b" in notes


def test_network_policy_admits_only_health_and_metrics(render: Renderer) -> None:
    manifests = render({})
    policy = one(manifests, "NetworkPolicy")
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress: API server, artifacts, Prometheus
    container_ports = {p["name"] for p in operator_container(manifests)["ports"]}
    admitted = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert admitted == container_ports == {"health", "metrics"}


def test_network_policy_restricts_metrics_scrapers(render: Renderer) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policy = one(render({"networkPolicy": {"enabled": True, "metricsFrom": [peer]}}), "NetworkPolicy")
    metrics_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"] == [peer]
    assert by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []


@pytest.mark.parametrize("name", ["default", "namespaced"])
def test_modelops_run_accepts_the_chart_arguments(render: Renderer, name: str) -> None:
    # The chart and the CLI must agree on flags, or the pod crash-loops on a real cluster; a
    # missing `run` subcommand is that very failure, never a reason to skip.
    from modelops.cli import build_parser
    from modelops.commands.artifact_options import artifact_config

    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert "run" in subcommands
    container = operator_container(render(VALUE_SETS[name]))
    args = parser.parse_args([*container["command"][1:], *container["args"]])
    assert args.command == "run"
    artifact_config(args)  # the artifact flags are valid values too
    assert (args.health_port, args.metrics_port) == (8081, 8083)
    if name == "namespaced":
        assert args.namespace == ["team-a", "team-b"]
        assert not args.all_namespaces
    else:
        assert args.all_namespaces


def documented_permissions() -> tuple[set[Permission], set[Permission]]:
    """(namespaced, cluster) permissions from the RBAC table of docs/install.md."""
    text = (ROOT / "docs" / "install.md").read_text()
    section = text.split("## 5. RBAC", 1)[1].split("\n## ", 1)[0]
    namespaced: set[Permission] = set()
    cluster: set[Permission] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in {"API group", "---"}:
            continue
        target = cluster if "(cluster)" in cells[0] else namespaced
        groups = [g.replace("(cluster)", "").strip().strip("`") for g in cells[0].split(",")]
        groups = ["" if g == "core" else g for g in groups]
        resources = [r.strip().strip("`") for r in cells[1].split(",")]
        verbs = [v.strip() for v in cells[2].split(",")]
        target |= {(g, r, v) for g in groups for r in resources for v in verbs}
    return namespaced, cluster


def test_docs_rbac_table_matches_the_chart(render: Renderer) -> None:
    namespaced, cluster = documented_permissions()
    roles = {r["metadata"]["name"]: permissions(r["rules"]) for r in by_kind(render({}), "ClusterRole")}
    assert namespaced == roles[RELEASE]
    assert cluster == roles[f"{RELEASE}-cluster"]
