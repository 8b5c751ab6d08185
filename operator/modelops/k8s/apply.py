"""Idempotent create-or-patch of the children the operator owns (ServiceAccounts, Roles, CronJobs, Jobs).

A desired manifest is created if absent; if present, it is patched only when the fields we own
differ, with the observed resourceVersion as a precondition, so a concurrent change is a retry,
never a lost update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.k8s.client import describe_unreachable
from modelops.k8s.resources import Conflict, Rejected

Obj = dict[str, Any]
Outcome = Literal["created", "updated", "unchanged", "exists"]


@dataclass(frozen=True)
class _Ops:
    create: Callable[..., Any]
    read: Callable[..., Any]
    patch: Callable[..., Any]


def _ops(api: client.ApiClient, kind: str) -> _Ops:
    core, rbac, batch = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), client.BatchV1Api(api)
    table = {
        "ServiceAccount": _Ops(
            core.create_namespaced_service_account,
            core.read_namespaced_service_account,
            core.patch_namespaced_service_account,
        ),
        "ConfigMap": _Ops(
            core.create_namespaced_config_map, core.read_namespaced_config_map, core.patch_namespaced_config_map
        ),
        "Role": _Ops(rbac.create_namespaced_role, rbac.read_namespaced_role, rbac.patch_namespaced_role),
        "RoleBinding": _Ops(
            rbac.create_namespaced_role_binding, rbac.read_namespaced_role_binding, rbac.patch_namespaced_role_binding
        ),
        "CronJob": _Ops(
            batch.create_namespaced_cron_job, batch.read_namespaced_cron_job, batch.patch_namespaced_cron_job
        ),
        "Job": _Ops(batch.create_namespaced_job, batch.read_namespaced_job, batch.patch_namespaced_job),
    }
    if kind not in table:
        raise ValueError(f"no apply support for kind {kind}")
    return table[kind]


def _differs(desired: Any, live: Any) -> bool:
    """True when a field we set differs from the live object (fields we do not set are ignored)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return True
        return any(_differs(v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return True
        return any(_differs(d, lv) for d, lv in zip(desired, live, strict=True))
    return bool(desired != live)


def apply(api: client.ApiClient, obj: Obj, *, immutable: bool = False) -> tuple[Outcome, Obj]:
    """Create ``obj`` or bring the live object in line with it.

    ``immutable`` objects (Jobs) are only created: an existing one means the action already ran.
    """
    kind, meta = obj["kind"], obj["metadata"]
    ops = _ops(api, kind)
    ns, name = meta["namespace"], meta["name"]
    try:
        try:
            created = ops.create(ns, obj)
            return "created", api.sanitize_for_serialization(created)
        except ApiException as exc:
            if exc.status != 409:
                raise
        live = api.sanitize_for_serialization(ops.read(name, ns))
        if immutable:
            return "exists", live
        wanted = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        wanted["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
        if not _differs(wanted, live):
            return "unchanged", live
        patch = {**wanted, "metadata": {**wanted["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
        patched = ops.patch(name, ns, patch)
        return "updated", api.sanitize_for_serialization(patched)
    except ApiException as exc:
        if exc.status == 409:
            raise Conflict(f"{kind}/{name}: {exc.reason}") from exc
        raise Rejected(f"{kind}/{name}: {exc.status} {exc.reason}: {(exc.body or '')[:300]}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise describe_unreachable(api, exc) from exc


def read_job(api: client.ApiClient, namespace: str, name: str) -> Obj | None:
    try:
        job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    result: Obj = api.sanitize_for_serialization(job)
    return result
