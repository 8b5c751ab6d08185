"""crds/ is generated from the pydantic models, and the chart carries an identical copy (files/crds/,
rendered by templates/crds.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelops.api.crdgen import KINDS, render

ROOT = Path(__file__).resolve().parents[2]
CHART_CRDS = ROOT / "charts" / "modelops" / "files" / "crds"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_file_is_not_stale(kind):
    path = ROOT / "crds" / f"{kind.crd_name}.yaml"
    assert path.read_text() == render(kind), f"{path} is stale: run `modelops crds --chart charts/modelops`"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_chart_copy_matches(kind):
    top = ROOT / "crds" / f"{kind.crd_name}.yaml"
    chart = CHART_CRDS / f"{kind.crd_name}.yaml"
    assert chart.read_text() == top.read_text(), f"{chart} differs from {top}"


def test_no_stray_crd_files():
    names = {f"{k.crd_name}.yaml" for k in KINDS}
    assert {p.name for p in (ROOT / "crds").glob("*.yaml")} == names
    assert {p.name for p in CHART_CRDS.glob("*.yaml")} == names
    # Helm's install-only crds/ directory is not used: the chart templates its CRDs.
    assert not (ROOT / "charts" / "modelops" / "crds").exists()


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind):
    doc = yaml.safe_load(render(kind))
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert doc["spec"]["names"]["categories"] == ["modelops"]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "title", "$defs"):
            assert banned not in node, f"{banned} at {path}"
        if "properties" in node:
            assert node.get("type") == "object", path
            assert "additionalProperties" not in node, path


def test_printer_columns_of_model_version():
    kind = next(k for k in KINDS if k.kind == "ModelVersion")
    cols = [c["name"].upper() for c in yaml.safe_load(render(kind))["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert cols == ["MODEL", "VERSION", "STAGE", "PHASE", "AGE"]


def test_short_names():
    assert {k.kind: k.short_names for k in KINDS} == {
        "ModelVersion": ("mv",),
        "ModelDeployment": ("mdep",),
        "DriftMonitor": ("dm",),
        "ModelPolicy": ("mpol",),
    }
