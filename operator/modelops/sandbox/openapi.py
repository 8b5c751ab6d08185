"""Just enough OpenAPI v3 for kubectl: it learns from the PATCH operations that the server does
field validation (`fieldValidation=Strict`), so `kubectl apply` validates server-side and never needs
the protobuf `/openapi/v2` document; CRD schemas are included so `kubectl explain` works.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelops.sandbox.resources import Resource

_PARAMS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
]


def _definition_name(res: Resource) -> str:
    group = ".".join(reversed(res.group.split("."))) if res.group else "io.k8s.api.core"
    return f"{group}.{res.version}.{res.kind}"


def group_version_doc(resources: list[Resource], gv_path: str) -> dict[str, Any]:
    """The `/openapi/v3/<gv_path>` document of one group/version."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for res in resources:
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        base = f"/{gv_path}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"/{gv_path}/{res.plural}"
        ops: dict[str, Any] = {
            verb: {
                "operationId": f"{verb}{res.kind}",
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
                "parameters": _PARAMS,
            }
            for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))
        }
        ops["parameters"] = _PARAMS
        paths[f"{base}/{{name}}"] = ops
        paths[base] = {
            "get": {"operationId": f"list{res.kind}", "x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}}},
            "post": {"operationId": f"create{res.kind}", "x-kubernetes-action": "post",
                     "x-kubernetes-group-version-kind": gvk, "responses": {"201": {"description": "Created"}}},
            "parameters": _PARAMS,
        }  # fmt: skip
        if res.schema is not None:
            schemas[_definition_name(res)] = {**_sanitize(res.schema), "x-kubernetes-group-version-kind": [gvk]}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def root(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`/openapi/v3`: one entry per group/version, with a content hash as kube-apiserver does."""
    return {
        "paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest(doc)}"} for gv, doc in sorted(docs.items())}
    }


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def _sanitize(schema: Any) -> Any:
    """Numeric exclusive bounds (accepted only by a lenient sandbox) as OpenAPI v3.0 spells them."""
    if isinstance(schema, list):
        return [_sanitize(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _sanitize(v) for k, v in schema.items()}
    for ex, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(ex)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound], out[ex] = value, True
    return out
