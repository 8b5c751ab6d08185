"""The kube-state-metrics customResourceState snippet (examples/observability/kube-prometheus-stack-values.yaml),
checked structurally: no kube-state-metrics binary runs here, so every path it reads is resolved in
the CRDs' schemas, every phase list equals the CRD's enum, and its RBAC covers what it watches."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from ._support import ROOT

VALUES = ROOT / "examples" / "observability" / "kube-prometheus-stack-values.yaml"
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
KINDS = ("ModelVersion", "ModelDeployment", "DriftMonitor", "ModelPolicy")
NO_PHASE = {"ModelPolicy"}  # its status has conditions and a message, no phase
# What kube-state-metrics accepts in `each` (pkg/customresourcestate: MetricType).
METRIC_TYPES = {"Gauge": "gauge", "StateSet": "stateSet", "Info": "info"}
# metadata is not in a CRD's schema but every object has these.
METADATA_FIELDS = {"name", "namespace", "labels", "annotations", "uid", "creationTimestamp", "generation"}


def ksm() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(VALUES.read_text())["kube-state-metrics"]
    return values


def resources() -> list[dict[str, Any]]:
    config = ksm()["customResourceState"]["config"]
    assert config["kind"] == "CustomResourceStateMetrics"
    found: list[dict[str, Any]] = config["spec"]["resources"]
    return found


def crds() -> dict[str, dict[str, Any]]:
    out = {}
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        out[crd["spec"]["names"]["kind"]] = crd
    return out


def served_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    [v] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert v["served"] is True
    schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
    return schema


def resolve(schema: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The schema node a kube-state-metrics path reaches; a list is entered through its items
    (ksm produces one metric per element). Fails the test on a path the schema does not have."""
    node = schema
    for i, segment in enumerate(path):
        if node.get("type") == "array":
            node = node["items"]
        if i == 0 and segment == "metadata":
            assert path[1] in METADATA_FIELDS, path
            return {"type": "string"}
        properties = node.get("properties") or {}
        assert segment in properties, f"{'.'.join(path)}: no field {segment!r} (has {sorted(properties)})"
        node = properties[segment]
    return node


def element(node: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = node["items"] if node.get("type") == "array" else node
    return item


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_ready_conditions_and_phase(kind: str) -> None:
    [resource] = [r for r in resources() if r["groupVersionKind"]["kind"] == kind]
    gvk = resource["groupVersionKind"]
    crd = crds()[kind]
    assert gvk["group"] == crd["spec"]["group"] == "modelops.dev"
    schema = served_schema(crd, gvk["version"])
    assert resource["labelsFromPath"] == {"namespace": ["metadata", "namespace"], "name": ["metadata", "name"]}
    prefix = resource["metricNamePrefix"]
    assert prefix == f"kube_modelops_{kind.lower()}"
    metrics = {m["name"]: m for m in resource["metrics"]}
    assert "status_condition" in metrics
    assert ("phase" in schema["properties"]["status"]["properties"]) == (kind not in NO_PHASE)
    assert ("phase" in metrics) == (kind not in NO_PHASE)

    # Conditions: one gauge per condition, 1 when its status is "True" (ksm maps "True"/"False"/"Unknown").
    gauge = metrics["status_condition"]["each"]["gauge"]
    conditions = element(resolve(schema, gauge["path"]))
    assert gauge["path"] == ["status", "conditions"]
    assert gauge["valueFrom"] == ["status"]
    assert {"type", "status", "reason"} <= set(conditions["properties"])
    assert gauge["labelsFromPath"]["type"] == ["type"]

    # Phase: a StateSet whose states are exactly the CRD's enum, so no phase goes unreported.
    if kind in NO_PHASE:
        return
    state_set = metrics["phase"]["each"]["stateSet"]
    phase = resolve(schema, state_set["path"])
    assert state_set["list"] == phase["enum"], f"{kind}: update the phase list to the CRD's enum"
    assert LABEL_NAME.match(state_set["labelName"])


@pytest.mark.parametrize("kind", KINDS)
def test_every_metric_is_well_formed_and_reads_existing_fields(kind: str) -> None:
    [resource] = [r for r in resources() if r["groupVersionKind"]["kind"] == kind]
    schema = served_schema(crds()[kind], resource["groupVersionKind"]["version"])
    for path in resource["labelsFromPath"].values():
        resolve(schema, path)
    for metric in resource["metrics"]:
        name = f"{resource['metricNamePrefix']}_{metric['name']}"
        assert METRIC_NAME.match(name), name
        assert metric["help"], name
        each = metric["each"]
        assert set(each) == {"type", METRIC_TYPES[each["type"]]}, name
        spec = each[METRIC_TYPES[each["type"]]]
        base = spec.get("path", [])
        node = resolve(schema, base) if base else schema
        for label, sub in (spec.get("labelsFromPath") or {}).items():
            assert LABEL_NAME.match(label), (name, label)
            if sub[0] == "metadata" or not base:
                resolve(schema, sub)
            else:
                resolve(element(node), sub)
        if "valueFrom" in spec:
            value = resolve(element(node), spec["valueFrom"])
            assert value.get("type") in {"string", "integer", "number", "boolean"}, name
        elif each["type"] == "Gauge":
            assert node.get("type") in {"integer", "number"}, name
        if each["type"] == "StateSet":
            assert "enum" in node, f"{name}: a StateSet over a field without an enum"
            assert spec["list"] == node["enum"], name


def test_metric_names_are_unique_and_documented() -> None:
    names = [f"{r['metricNamePrefix']}_{m['name']}" for r in resources() for m in r["metrics"]]
    assert len(names) == len(set(names))
    doc = (ROOT / "docs" / "observability.md").read_text()
    for name in names:
        assert name in doc, f"docs/observability.md does not list {name}"


def test_rbac_lets_kube_state_metrics_watch_what_it_reads() -> None:
    rules = ksm()["rbac"]["extraRules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    for resource in resources():
        plural = crds()[resource["groupVersionKind"]["kind"]]["spec"]["names"]["plural"]
        assert {("modelops.dev", plural, "list"), ("modelops.dev", plural, "watch")} <= granted
    # kube-state-metrics discovers custom resources through their CRDs.
    assert {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")} <= granted
    # And nothing else: read-only, no wildcards.
    assert {v for _, _, v in granted} == {"list", "watch"}
    assert not any("*" in item for rule in rules for field in rule.values() for item in field)


def test_a_path_the_crd_lacks_fails_the_check() -> None:
    # The checks above are only worth something if a typo fails them.
    schema = served_schema(crds()["ModelDeployment"], "v1alpha1")
    with pytest.raises(AssertionError, match="canaryWieght"):
        resolve(schema, ["status", "canaryWieght"])
