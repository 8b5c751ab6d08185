"""Artifact Hub annotations of Chart.yaml (https://artifacthub.io/docs/topics/annotations/helm/):
well-formed, consistent with the chart, and the CRD examples accepted by the CRDs (schema and CEL,
by the sandbox API server) and by the operator's own models."""

from __future__ import annotations

import tomllib
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes.client import ApiClient, CustomObjectsApi

from modelops.api.crdgen import KINDS

from ._support import CHART_DIR, ROOT, Renderer

CATEGORIES = {
    "ai-machine-learning",
    "database",
    "integration-delivery",
    "monitoring-logging",
    "networking",
    "security",
    "storage",
    "streaming-messaging",
}
CAPABILITIES = {"Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"}
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}
SPEC_MODELS: dict[str, Any] = {k.kind: k.spec for k in KINDS}


def chart() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    return loaded


def annotation(key: str) -> Any:
    value = chart()["annotations"][f"artifacthub.io/{key}"]
    assert isinstance(value, str), "Chart.yaml annotations are strings (lists as YAML text)"
    return value


def listed(key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load(annotation(key))
    assert isinstance(items, list), key
    assert items, key
    return items


def repo_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        crds[crd["spec"]["names"]["kind"]] = crd
    return crds


def test_scalar_annotations() -> None:
    assert annotation("category") in CATEGORIES
    assert annotation("operator") == "true"
    assert annotation("operatorCapabilities") in CAPABILITIES
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert annotation("license") == license_
    assert annotation("prerelease") in {"true", "false"}
    assert (annotation("prerelease") == "true") == chart()["version"].startswith("0.")
    assert annotation("containsSecurityUpdates") in {"true", "false"}


def test_images_are_the_image_the_chart_deploys(render: Renderer) -> None:
    deployment = next(m for m in render({}) if m["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert listed("images") == [{"name": "modelops", "image": container["image"]}]


def test_links_and_changes() -> None:
    for link in listed("links"):
        assert set(link) == {"name", "url"}
        url = urlparse(link["url"])
        assert url.scheme == "https", link
        assert url.netloc, link
        if "/blob/main/" in link["url"] or "/tree/main/" in link["url"]:
            local = ROOT / link["url"].split("/main/", 1)[1].split("#")[0]
            assert local.exists(), f"{link['url']}: {local} does not exist"
    for change in listed("changes"):
        assert change["kind"] in CHANGE_KINDS
        assert change["description"].strip()


def test_crds_list_every_crd_the_chart_installs() -> None:
    crds = repo_crds()
    entries = listed("crds")
    assert {e["kind"] for e in entries} == set(crds)
    for entry in entries:
        crd = crds[entry["kind"]]
        assert entry["name"] == crd["metadata"]["name"]
        assert entry["version"] in {v["name"] for v in crd["spec"]["versions"] if v["served"]}
        assert entry["description"]
        assert entry["displayName"]


def test_one_example_per_crd() -> None:
    examples = listed("crdsExamples")
    assert sorted(e["kind"] for e in examples) == sorted(repo_crds())
    for example in examples:
        assert example["apiVersion"] == "modelops.dev/v1alpha1"
        assert "namespace" not in example["metadata"]  # usable in any namespace


def test_examples_are_accepted_by_the_api_server(k8s_api_client: ApiClient) -> None:
    # The sandbox API server validates custom resources against the CRDs in crds/ (schema, CEL).
    api = CustomObjectsApi(k8s_api_client)
    crds = repo_crds()
    for example in listed("crdsExamples"):
        plural = crds[example["kind"]]["spec"]["names"]["plural"]
        api.create_namespaced_custom_object("modelops.dev", "v1alpha1", "default", plural, example, dry_run="All")


@pytest.mark.parametrize("kind", sorted(SPEC_MODELS))
def test_examples_parse_as_the_operator_parses_them(kind: str) -> None:
    # Beyond the CRD: the operator's models (what decides Ready=False, InvalidSpec) accept them.
    [example] = [e for e in listed("crdsExamples") if e["kind"] == kind]
    SPEC_MODELS[kind].model_validate(example["spec"])
