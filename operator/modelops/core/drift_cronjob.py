"""Pure manifest builders for a DriftMonitor's children: CronJob, its RBAC, and retraining Jobs.

Plain dicts, no I/O (``get_*``-style builders; the k8s layer applies them). Every child carries
an ownerReference to the monitor, so deleting the monitor garbage-collects them.

The CronJob runs ``modelops drift check --monitor NS/NAME`` as a non-root, read-only container
under a ServiceAccount that can only read and patch *that* monitor's status (and read its data
Secret, if any): a compromised check cannot touch anything else in the namespace.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelops.api.driftmonitor import CheckResult, DriftMonitorSpec

API_VERSION = "modelops.dev/v1alpha1"
KIND = "DriftMonitor"
PLURAL = "driftmonitors"
MANAGED_BY = "modelops"
MONITOR_LABEL = "modelops.dev/drift-monitor"
CHECK_TIME_ANNOTATION = "modelops.dev/drift-check-time"
CHECK_USER = 65532
"""The distroless "nonroot" uid: any non-zero uid works with runAsNonRoot."""

MAX_CRONJOB_NAME = 52  # the CronJob controller appends an 11-character suffix to Job names
MAX_NAME = 63
MAX_REPORT_ENV = 128 * 1024


@dataclass(frozen=True)
class MonitorRef:
    """The DriftMonitor object the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class CheckJobOptions:
    image: str
    starting_deadline_seconds: int = 300
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3
    backoff_limit: int = 1
    active_deadline_seconds: int = 3600
    ttl_seconds_after_finished: int = 86400
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    memory_limit: str = "2Gi"
    tmp_size_limit: str = "1Gi"
    image_pull_policy: str = "IfNotPresent"


def _truncate(name: str, limit: int) -> str:
    return name[:limit].rstrip("-.")


def cronjob_name(monitor: MonitorRef) -> str:
    return _truncate(f"{monitor.name}-drift", MAX_CRONJOB_NAME)


def service_account_name(monitor: MonitorRef) -> str:
    return _truncate(f"{monitor.name}-drift-check", MAX_NAME)


def labels(monitor: MonitorRef, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "modelops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/component": component,
        MONITOR_LABEL: _truncate(monitor.name, MAX_NAME),
    }


def owner_reference(monitor: MonitorRef) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": monitor.name,
        "uid": monitor.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(monitor: MonitorRef, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": monitor.namespace,
        "labels": labels(monitor, component),
        "ownerReferences": [owner_reference(monitor)],
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": CHECK_USER,
        "runAsGroup": CHECK_USER,
        "fsGroup": CHECK_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The "restricted" Pod Security Standard, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def check_command(monitor: MonitorRef) -> list[str]:
    return ["modelops", "drift", "check", "--monitor", f"{monitor.namespace}/{monitor.name}"]


def build_cronjob(monitor: MonitorRef, spec: DriftMonitorSpec, options: CheckJobOptions) -> dict[str, Any]:
    """The CronJob that runs the check on ``spec.schedule``; never two checks at once."""
    pod_labels = labels(monitor, "drift-check")
    container: dict[str, Any] = {
        "name": "drift-check",
        "image": spec.image or options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": check_command(monitor),
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "TMPDIR", "value": "/tmp"},
            {"name": "MODELOPS_MONITOR", "value": f"{monitor.namespace}/{monitor.name}"},
        ],
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"memory": options.memory_limit},
        },
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.data_secret_ref is not None:
        # Credentials for fsspec (AWS_*, GOOGLE_*, AZURE_*) as environment variables.
        container["envFrom"] = [{"secretRef": {"name": spec.data_secret_ref.name}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(monitor, cronjob_name(monitor), "drift-check"),
        "spec": {
            "schedule": spec.schedule,
            "suspend": spec.suspend,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": options.starting_deadline_seconds,
            "successfulJobsHistoryLimit": options.successful_jobs_history_limit,
            "failedJobsHistoryLimit": options.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": dict(pod_labels)},
                "spec": {
                    "backoffLimit": options.backoff_limit,
                    "activeDeadlineSeconds": options.active_deadline_seconds,
                    "ttlSecondsAfterFinished": options.ttl_seconds_after_finished,
                    "template": {
                        "metadata": {"labels": dict(pod_labels)},
                        "spec": {
                            "serviceAccountName": service_account_name(monitor),
                            "automountServiceAccountToken": True,
                            "restartPolicy": "Never",
                            "securityContext": pod_security_context(),
                            "containers": [container],
                            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": options.tmp_size_limit}}],
                        },
                    },
                },
            },
        },
    }


def build_service_account(monitor: MonitorRef) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(monitor, service_account_name(monitor), "drift-check"),
        "automountServiceAccountToken": False,
    }


def build_role(monitor: MonitorRef, spec: DriftMonitorSpec, *, record_events: bool = False) -> dict[str, Any]:
    """Least privilege: get/patch of this monitor's status, get of its data Secret.

    The status subresource returns the whole object, so no access to the main resource is
    needed. ``record_events`` adds ``create`` on Events (which cannot be scoped by name) for a
    check that records its own Event instead of leaving that to the operator.
    """
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": ["modelops.dev"],
            "resources": [f"{PLURAL}/status"],
            "resourceNames": [monitor.name],
            "verbs": ["get", "patch"],
        }
    ]
    if spec.data_secret_ref is not None:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [spec.data_secret_ref.name],
                "verbs": ["get"],
            }
        )
    if record_events:
        rules.append({"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(monitor, service_account_name(monitor), "drift-check"),
        "rules": rules,
    }


def build_role_binding(monitor: MonitorRef) -> dict[str, Any]:
    name = service_account_name(monitor)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(monitor, name, "drift-check"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": monitor.namespace}],
    }


def retrain_job_name(monitor: MonitorRef, now: datetime) -> str:
    """Deterministic per check time, so a retried create is idempotent (AlreadyExists)."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    return f"{_truncate(monitor.name, MAX_NAME - len(stamp) - 9)}-retrain-{stamp}"


def report_env(result: CheckResult) -> str:
    """The check result as compact JSON; only drifted features when the whole is too large."""
    body = result.to_wire()
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_REPORT_ENV:
        body["features"] = [f for f in body.get("features", []) if f.get("drifted")]
        body["truncated"] = True
        text = json.dumps(body, separators=(",", ":"))
    return text


def build_retrain_job(
    monitor: MonitorRef,
    job_template: Mapping[str, Any],
    *,
    model_name: str,
    model_version: str,
    result: CheckResult,
    reference_uri: str,
    now: datetime,
) -> dict[str, Any]:
    """A batch/v1 Job from the monitor's ``jobTemplate`` (a JobTemplateSpec).

    Every container gets MODEL_NAME, MODEL_VERSION, DRIFT_REPORT (the check result as JSON) and
    REFERENCE_URI, replacing same-named variables of the template. Raises ValueError when the
    template has no containers (the operator reports it as an invalid spec).
    """
    template = copy.deepcopy(dict(job_template))
    job_spec = template.get("spec")
    pod_spec = (job_spec or {}).get("template", {}).get("spec", {}) if isinstance(job_spec, dict) else {}
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ValueError("jobTemplate.spec.template.spec.containers must list at least one container")
    assert isinstance(job_spec, dict)
    injected = {
        "MODEL_NAME": model_name,
        "MODEL_VERSION": model_version,
        "DRIFT_REPORT": report_env(result),
        "REFERENCE_URI": reference_uri,
    }
    for container in containers:
        env = [e for e in container.get("env", []) if e.get("name") not in injected]
        env.extend({"name": k, "value": v} for k, v in injected.items())
        container["env"] = env
    pod_spec.setdefault("restartPolicy", "Never")
    template_meta = template.get("metadata") or {}
    meta = _metadata(monitor, retrain_job_name(monitor, now), "retrain")
    meta["labels"] = {**template_meta.get("labels", {}), **meta["labels"]}
    annotations = {**template_meta.get("annotations", {}), CHECK_TIME_ANNOTATION: now.isoformat()}
    meta["annotations"] = annotations
    pod_meta = job_spec["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**pod_meta.get("labels", {}), **labels(monitor, "retrain")}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}
