"""Generate CustomResourceDefinitions from the pydantic models.

Pydantic emits JSON Schema with ``$ref``, ``anyOf`` for optionals and titles; Kubernetes wants a
*structural* OpenAPI v3 schema: every node typed, no refs, no nullable unions. This module does that
translation, and nothing in ``crds/`` is ever edited by hand.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from modelops import GROUP, VERSION
from modelops.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from modelops.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelops.api.modelpolicy import ModelPolicySpec, ModelPolicyStatus
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus

JSON = dict[str, Any]
_DROP = {"title", "discriminator"}


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how kubectl shows it."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[tuple[str, str, str], ...]  # (name, type, jsonPath)
    description: str
    extra_columns: tuple[JSON, ...] = field(default=())

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS: tuple[Kind, ...] = (
    Kind(
        kind="ModelVersion",
        plural="modelversions",
        singular="modelversion",
        short_names=("mv",),
        spec=ModelVersionSpec,
        status=ModelVersionStatus,
        columns=(
            ("Model", "string", ".spec.modelName"),
            ("Version", "string", ".spec.version"),
            ("Stage", "string", ".status.stage"),
            ("Phase", "string", ".status.phase"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
        description="An immutable, digest-verified model artifact with lineage, stage and approval.",
    ),
    Kind(
        kind="ModelDeployment",
        plural="modeldeployments",
        singular="modeldeployment",
        short_names=("mdep",),
        spec=ModelDeploymentSpec,
        status=ModelDeploymentStatus,
        columns=(
            ("Version", "string", ".status.stableVersion"),
            ("Canary", "string", ".status.canaryVersion"),
            ("Phase", "string", ".status.phase"),
            ("Weight", "integer", ".status.canaryWeight"),
            ("Step", "integer", ".status.currentStepIndex"),
            ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
        description="Serves a ModelVersion and rolls new versions out by analysed canary steps.",
    ),
    Kind(
        kind="DriftMonitor",
        plural="driftmonitors",
        singular="driftmonitor",
        short_names=("dm",),
        spec=DriftMonitorSpec,
        status=DriftMonitorStatus,
        columns=(
            ("Target", "string", ".spec.target['deployment','modelVersion']"),  # the deployment, else the version
            ("Schedule", "string", ".spec.schedule"),
            ("Phase", "string", ".status.phase"),
            ("Drift-Share", "number", ".status.lastResult.driftShare"),
            ("Last-Check", "date", ".status.lastCheckTime"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
        description="Scheduled drift checks of a deployment, debounced into alerts or retraining.",
    ),
    Kind(
        kind="ModelPolicy",
        plural="modelpolicies",
        singular="modelpolicy",
        short_names=("mpol",),
        spec=ModelPolicySpec,
        status=ModelPolicyStatus,
        columns=(
            ("Model", "string", ".spec.modelName"),
            ("Auto-Staging", "boolean", ".spec.autoPromoteToStaging"),
            ("Auto-Production", "boolean", ".spec.autoPromoteToProduction"),
            ("Approval", "string", ".spec.productionApproval"),
            ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
        description="Validation gates a model's versions must pass to enter Staging or Production.",
    ),
)


def _resolve(node: Any, defs: JSON) -> Any:
    """Inline refs, collapse Optional unions and drop what structural schemas forbid."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        node = {**_resolve(inner, defs), **node}
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {options}")
        node = {**_resolve(options[0], defs), **node}
        if node.get("default", 0) is None:
            node.pop("default")
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            node[plain] = node.pop(bound)  # JSON Schema 2020 number -> OpenAPI v3.0 boolean flag
            node[bound] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for key in _DROP:
        node.pop(key, None)
    if node.get("default", 0) is None or isinstance(node.get("default"), dict | list):
        node.pop("default", None)
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node.pop("additionalProperties", None)
        node.setdefault("type", "object")
    if node.get("additionalProperties") is False:  # structural schemas prune instead
        node.pop("additionalProperties")
    if node.get("additionalProperties") is True:
        node.pop("additionalProperties")
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if "properties" in node:
        node["type"] = "object"
        node["properties"] = {k: _resolve(v, defs) for k, v in node["properties"].items()}
    if "items" in node:
        node["items"] = _resolve(node["items"], defs)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _resolve(node["additionalProperties"], defs)
    return node


def structural_schema(model: type[BaseModel]) -> JSON:
    """The OpenAPI v3 schema Kubernetes accepts for ``model``."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return dict(_resolve(raw, defs))


def crd(kind: Kind) -> JSON:
    """The full CustomResourceDefinition object for one kind."""
    status_schema = structural_schema(kind.status)
    status_schema.pop("required", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "modelops"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["modelops"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": name, "type": typ, "jsonPath": path} for name, typ, path in kind.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "description": kind.description,
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": structural_schema(kind.spec),
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    header = "# Generated by `modelops crds` from modelops.api; do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120)


def write_all(directory: Path) -> list[Path]:
    """Write one YAML file per kind; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / f"{kind.crd_name}.yaml"
        path.write_text(render(kind))
        written.append(path)
    return written
