"""Helpers for the sandbox tests: an in-loop server with a raw aiohttp session, and sample bodies."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from modelops.sandbox import ApiServer
from tests.support.apiserver import CRDS

MV = "/apis/modelops.dev/v1alpha1/namespaces/default/modelversions"
DIGEST = "sha256:" + "a" * 64

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.modelops.dev"},
    "spec": {
        "group": "test.modelops.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"],
                  "categories": ["testing"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                            "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                            "enabled": {"type": "boolean"},
                            "when": {"type": "string", "format": "date-time"},
                            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "owner": {"type": "string"},
                            "items": {"type": "array", "items": {
                                "type": "object", "properties": {"n": {"type": "integer", "default": 7}}}},
                        },
                        "x-kubernetes-validations": [
                            {"rule": "self.owner == oldSelf.owner", "message": "owner is immutable",
                             "fieldPath": ".owner"},
                            {"rule": "!has(self.tags) || self.tags.all(t, t.matches('^[a-z]+$'))",
                             "message": "tags must be lowercase", "reason": "FieldValueForbidden"},
                            {"rule": "size(self.owner) == 0 || self.owner.startsWith('team-')",
                             "message": "owner must start with team-"},
                        ],
                    },
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"}, "count": {"type": "integer"}}},
                },
            }},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
        }],
    },
}  # fmt: skip


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "test.modelops.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": 3, "owner": "team-a", **spec},
    }


def model_version(name: str = "iris-v1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "iris",
            "version": "1",
            "artifact": {"uri": "file:///tmp/model.joblib", "digest": DIGEST},
        },
    }
    body["spec"].update(copy.deepcopy(spec))
    return body


class Client:
    """Raw HTTP against the sandbox: every call returns (status, parsed JSON body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json", **params: Any
    ) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        async with self.session.request(
            method, self.base + path, data=data, headers={"Content-Type": ctype}, params=params or None
        ) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **params)

    async def post(self, path: str, body: Any, **params: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body, **params)

    async def put(self, path: str, body: Any, **params: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **params)

    async def patch(
        self, path: str, body: Any, ctype: str = "application/merge-patch+json", **params: Any
    ) -> tuple[int, Any]:
        return await self.request("PATCH", path, body, ctype=ctype, **params)

    async def delete(self, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, body, **params)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = await self.request(method, path, body, **kw)
        assert status < 300, (status, out)
        return out


@pytest.fixture
async def api() -> AsyncIterator[ApiServer]:
    """An in-loop server with the repo's CRDs and the Widget test CRD."""
    async with ApiServer(port=0, crds=[CRDS], bookmark_interval=0.3) as server:
        crd = server.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        server.store.create(crd, None, WIDGET_CRD)
        yield server


@pytest.fixture
async def http(api: ApiServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, api.url)
