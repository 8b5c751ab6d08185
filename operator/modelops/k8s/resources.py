"""Thin, typed access to modelops custom objects through the Kubernetes client.

Kept to plain CRUD so every decision stays in ``modelops.core``; errors are translated into a
small set of exceptions the handlers and the CLI can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops import GROUP, VERSION
from modelops.k8s.client import describe_unreachable

Obj = dict[str, Any]


@dataclass(frozen=True)
class CustomKind:
    kind: str
    plural: str


MODEL_VERSION = CustomKind("ModelVersion", "modelversions")
MODEL_DEPLOYMENT = CustomKind("ModelDeployment", "modeldeployments")
DRIFT_MONITOR = CustomKind("DriftMonitor", "driftmonitors")
MODEL_POLICY = CustomKind("ModelPolicy", "modelpolicies")


class NotFound(Exception):
    pass


class Conflict(Exception):
    """409: someone else wrote first (stale resourceVersion) or the object exists already."""


class Rejected(Exception):
    """4xx other than 404/409: the API server refused the request, with its message."""


def _translate(api: client.ApiClient, exc: Exception) -> Exception:
    if isinstance(exc, ApiException):
        message = exc.reason or ""
        try:
            import json

            message = json.loads(exc.body or "{}").get("message", message)
        except ValueError:
            pass
        if exc.status == 404:
            return NotFound(message)
        if exc.status == 409:
            return Conflict(message)
        return Rejected(f"{exc.status}: {message}")
    return describe_unreachable(api, exc)


_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class CustomObjects:
    """CRUD on one namespace's modelops objects."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._co = client.CustomObjectsApi(api)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Obj:
        try:
            return cast(Obj, fn(GROUP, VERSION, *args, **kwargs))
        except (ApiException, *_NETWORK_ERRORS) as exc:
            raise _translate(self.api, exc) from exc

    def get(self, kind: CustomKind, namespace: str, name: str) -> Obj:
        return self._call(self._co.get_namespaced_custom_object, namespace, kind.plural, name)

    def get_status(self, kind: CustomKind, namespace: str, name: str) -> Obj:
        """Read through the status subresource: all a narrowly scoped ServiceAccount may do."""
        return self._call(self._co.get_namespaced_custom_object_status, namespace, kind.plural, name)

    def list(self, kind: CustomKind, namespace: str | None, label_selector: str | None = None) -> list[Obj]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            result = self._call(self._co.list_cluster_custom_object, kind.plural, **kwargs)
        else:
            result = self._call(self._co.list_namespaced_custom_object, namespace, kind.plural, **kwargs)
        return list(result.get("items", []))

    def create(self, kind: CustomKind, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._call(self._co.create_namespaced_custom_object, namespace, kind.plural, body, **kwargs)

    def patch(self, kind: CustomKind, namespace: str, name: str, body: Obj) -> Obj:
        """JSON merge patch; put metadata.resourceVersion in ``body`` to fail with Conflict if stale."""
        return self._call(self._co.patch_namespaced_custom_object, namespace, kind.plural, name, body)

    def patch_status(
        self, kind: CustomKind, namespace: str, name: str, status: Obj, resource_version: str | None = None
    ) -> Obj:
        """Merge-patch status; with ``resource_version``, Conflict if the object changed since it was read."""
        body: Obj = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._call(self._co.patch_namespaced_custom_object_status, namespace, kind.plural, name, body)

    def delete(self, kind: CustomKind, namespace: str, name: str) -> Obj:
        return self._call(self._co.delete_namespaced_custom_object, namespace, kind.plural, name)
