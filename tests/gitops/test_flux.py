"""Flux: the health check expressions docs/gitops.md gives, evaluated with cel-python on the
lifecycle fixtures against the kstatus port; and the examples under examples/gitops/flux,
rendered (their kustomizations) and checked structurally.

Flux's CRD schemas are not available offline and kubernetes-validate knows only Kubernetes' own
kinds: Namespaces are validated with it (--strict), the Flux kinds get the structural checks below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import kstatus
from tests.gitops.flux_cel import FLUX_KUSTOMIZATION, documented_exprs, flux_status
from tests.gitops.lifecycle import ROOT, committed

FLUX = ROOT / "examples" / "gitops" / "flux"
KINDS = ("ModelVersion", "ModelDeployment", "DriftMonitor", "ModelPolicy")


def test_the_docs_give_expressions_for_the_four_kinds():
    exprs = documented_exprs()
    assert sorted(exprs) == sorted(KINDS)
    for kind in KINDS:
        assert set(exprs[kind]) == {"inProgress", "failed", "current"}, kind


def test_the_example_uses_the_documented_expressions():
    spec = yaml.safe_load(FLUX_KUSTOMIZATION.read_text())["spec"]
    assert {
        e["kind"]: {k: v for k, v in e.items() if k not in ("apiVersion", "kind")} for e in spec["healthCheckExprs"]
    } == (documented_exprs())
    assert {e["apiVersion"] for e in spec["healthCheckExprs"]} == {"modelops.dev/v1alpha1"}
    assert spec["wait"] is True


@pytest.mark.parametrize("name", sorted(committed()))
def test_flux_agrees_with_kstatus_on_every_lifecycle_point(name):
    obj = committed()[name]
    point = name.split("-", 1)[1]
    flux, ks = flux_status(obj), kstatus.compute(obj).status
    if point == "fresh":
        # kstatus's blind spot (no status yet: Current); the expressions make Flux wait
        assert (ks, flux) == ("Current", "InProgress")
    elif point == "deleting":
        assert ks == "Terminating"  # Flux's evaluator does not look at deletion: prune waits for NotFound
    else:
        assert flux == ks, obj.get("status")


def test_expressions_wait_for_the_current_generation():
    obj = committed()["modeldeployment-healthy"]
    stale = {**obj, "metadata": {**obj["metadata"], "generation": obj["metadata"]["generation"] + 1}}
    assert flux_status(obj) == "Current"
    assert flux_status(stale) == "InProgress"


# ----------------------------------------------------------------------------- the examples

Obj = dict[str, Any]


def _build(folder: Path) -> list[Obj]:
    """`kustomize build` of a plain kustomization (resources only, as these are)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, f"{folder}: only resources are rendered here"
    objs: list[Obj] = []
    for entry in kustomization["resources"]:
        path = folder / entry
        objs += _build(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    return objs


def _need(obj: Obj, *paths: str) -> None:
    for path in paths:
        value: Any = obj
        for key in path.split("."):
            assert isinstance(value, dict), f"{obj['kind']} {obj['metadata']['name']}: {path} is not a map"
            assert key in value, f"{obj['kind']} {obj['metadata']['name']}: no {path}"
            value = value[key]


ALLOWED_SPEC = {
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): {"interval", "url", "ref", "ignore", "secretRef", "timeout"},
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): {
        "dependsOn",
        "interval",
        "retryInterval",
        "timeout",
        "sourceRef",
        "path",
        "targetNamespace",
        "prune",
        "wait",
        "healthChecks",
        "healthCheckExprs",
    },
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): {
        "interval",
        "timeout",
        "releaseName",
        "targetNamespace",
        "storageNamespace",
        "chart",
        "install",
        "upgrade",
        "values",
    },
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {name: _build(FLUX / name) for name in ("cluster", "infrastructure")}


def test_every_flux_object_is_structurally_valid(rendered):
    objs = [o for group in rendered.values() for o in group]
    kinds = sorted((o["apiVersion"], o["kind"]) for o in objs)
    assert kinds == sorted(
        [
            ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
            ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
            ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
            ("source.toolkit.fluxcd.io/v1", "GitRepository"),
            ("v1", "Namespace"),
        ]
    )
    for obj in objs:
        _need(obj, "metadata.name")
        allowed = ALLOWED_SPEC.get((obj["apiVersion"], obj["kind"]))
        if allowed is not None:
            assert set(obj["spec"]) <= allowed, f"{obj['kind']}: unknown spec fields {set(obj['spec']) - allowed}"
            _need(obj, "metadata.namespace", "spec.interval")
    for obj in objs:
        if obj["kind"] == "Kustomization":
            _need(obj, "spec.sourceRef.kind", "spec.sourceRef.name", "spec.path", "spec.prune")
        if obj["kind"] == "HelmRelease":
            _need(obj, "spec.chart.spec.chart", "spec.chart.spec.sourceRef.kind", "spec.chart.spec.sourceRef.name")
        if obj["kind"] == "GitRepository":
            _need(obj, "spec.url", "spec.ref.branch")


def test_the_namespaces_validate_strictly(rendered):
    import kubernetes_validate

    for obj in (o for group in rendered.values() for o in group):
        if obj["apiVersion"] == "v1":
            kubernetes_validate.validate(obj, "1.30", strict=True)


def test_references_resolve_and_paths_exist(rendered):
    objs = [o for group in rendered.values() for o in group]
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    sources = {
        (o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in objs if o["kind"] == "GitRepository"
    }
    for obj in objs:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] == "Kustomization":
            ref = obj["spec"]["sourceRef"]
            assert (ref["kind"], ref["name"], ref.get("namespace", ns)) in sources
            assert (ROOT / obj["spec"]["path"]).is_dir(), obj["spec"]["path"]
            assert ((ROOT / obj["spec"]["path"]) / "kustomization.yaml").exists()
            for dep in obj["spec"].get("dependsOn", []):
                assert ("Kustomization", dep["name"]) in by_kind, dep
        if obj["kind"] == "HelmRelease":
            chart = obj["spec"]["chart"]["spec"]
            ref = chart["sourceRef"]
            assert (ref["kind"], ref["name"], ref.get("namespace", ns)) in sources
            assert (ROOT / chart["chart"] / "Chart.yaml").exists()
    team = by_kind[("Kustomization", "ml-team-models")]
    assert team["spec"]["dependsOn"] == [{"name": "modelops-operator"}]
    assert ("Namespace", team["spec"]["targetNamespace"]) in by_kind


def test_the_helmrelease_values_are_valid_for_the_chart(rendered):
    """Helm validates values against the chart's values.schema.json first (closed: a typo fails)."""
    import json

    import jsonschema

    release = next(o for o in rendered["infrastructure"] if o["kind"] == "HelmRelease")
    schema = json.loads((ROOT / release["spec"]["chart"]["spec"]["chart"] / "values.schema.json").read_text())
    jsonschema.validate(release["spec"]["values"], schema)
    assert release["spec"]["values"]["crds"] == {"enabled": True, "keep": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"crds": {"enabled": True, "kep": True}}, schema)
