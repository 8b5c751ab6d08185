"""Pure manifest builders for a DriftMonitor's children: CronJob, its RBAC, and retraining Jobs.

Plain dicts, no I/O (``get_*``-style builders; the k8s layer applies them). Every child carries
an ownerReference to the monitor, so deleting the monitor garbage-collects them.

The CronJob runs ``modelops drift check --monitor NS/NAME`` as a non-root, read-only container
under a ServiceAccount that can only read and patch *that* monitor's status (and read its data
Secret, if any): a compromised check cannot touch anything else in the namespace.

A retraining Job (from ``spec.jobTemplate``) runs under its own ServiceAccount, ``<monitor>-retrain``,
whose Role allows ``create`` and ``get`` on ModelVersions (and ``get`` of the data Secret) and
nothing else: enough to register the version it trained. Its containers get the env of
:data:`RETRAIN_ENV` (see :func:`build_retrain_job`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelops.api.driftmonitor import CheckResult, CurrentData, DriftMonitorSpec
from modelops.api.performance import PerformanceSettings
from modelops.core.naming import model_version_name

API_VERSION = "modelops.dev/v1alpha1"
KIND = "DriftMonitor"
PLURAL = "driftmonitors"
MANAGED_BY = "modelops"
MONITOR_LABEL = "modelops.dev/drift-monitor"
CHECK_TIME_ANNOTATION = "modelops.dev/drift-check-time"
RETRAINED_BY_LABEL = "modelops.dev/retrained-by"
"""On a ModelVersion a retraining Job registered: the DriftMonitor's name."""
RETRAIN_JOB_LABEL = "modelops.dev/retrain-job"
"""On a ModelVersion a retraining Job registered: the Job's name (how the monitor links it)."""
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


def retrain_service_account_name(monitor: MonitorRef) -> str:
    return _truncate(f"{monitor.name}-retrain", MAX_NAME)


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


def build_retrain_service_account(monitor: MonitorRef) -> dict[str, Any]:
    """The retraining Job's identity; the token is mounted by the pod spec, not by default."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(monitor, retrain_service_account_name(monitor), "retrain"),
        "automountServiceAccountToken": False,
    }


def build_retrain_role(monitor: MonitorRef, spec: DriftMonitorSpec) -> dict[str, Any]:
    """Least privilege for a Job that registers its result: create/get ModelVersions, get the data Secret.

    ``create`` cannot be limited by name in Kubernetes RBAC (the name does not exist yet), so the
    Job may create any ModelVersion of its namespace, with any ``stage`` and ``approval``; the
    registry's gates, not this Role, decide whether such a version ever reaches a stage, and an
    approval written at creation does not count under a ModelPolicy (``selfApproval: Refused``,
    :func:`modelops.core.stage_policy.refuses_self_approval`). No update, patch or delete: it cannot
    change or remove a registered version, nor approve or promote one.
    """
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["modelops.dev"], "resources": ["modelversions"], "verbs": ["create", "get"]},
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
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(monitor, retrain_service_account_name(monitor), "retrain"),
        "rules": rules,
    }


def build_retrain_role_binding(monitor: MonitorRef) -> dict[str, Any]:
    name = retrain_service_account_name(monitor)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(monitor, name, "retrain"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": monitor.namespace}],
    }


def retrain_children(monitor: MonitorRef, spec: DriftMonitorSpec) -> list[dict[str, Any]]:
    """The retraining Job's ServiceAccount, Role and RoleBinding; none without a jobTemplate."""
    if spec.job_template is None:
        return []
    return [
        build_retrain_service_account(monitor),
        build_retrain_role(monitor, spec),
        build_retrain_role_binding(monitor),
    ]


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


def trigger_signal(result: CheckResult) -> str:
    """Which signal a check raised: ``data-drift``, ``performance``, ``both`` or ``""`` (none)."""
    degraded = result.performance is not None and result.performance.verdict == "Degraded"
    if result.dataset_drift and degraded:
        return "both"
    return "data-drift" if result.dataset_drift else "performance" if degraded else ""


def performance_report_env(result: CheckResult) -> str:
    """The check's performance result as compact JSON (``""`` when the monitor judges no performance)."""
    if result.performance is None:
        return ""
    body = result.performance.to_wire()
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_REPORT_ENV:
        body.pop("windows", None)
        body["truncated"] = True
        text = json.dumps(body, separators=(",", ":"))
    return text


_LEADING_NUMBER = re.compile(r"^[vV]?(\d+)")


def next_version(existing: Iterable[str]) -> str:
    """The version a retraining registers: one more than the largest leading number of ``existing``.

    ``["1", "v2", "3.1.0", "nightly"]`` -> ``"4"``; nothing numbered -> ``"1"``. No existing
    version starts with that number, so the version (and its object name ``<model>-v<n>``) is new.
    """
    numbers = [int(m.group(1)) for v in existing if (m := _LEADING_NUMBER.match(v.strip()))]
    return str(max(numbers, default=0) + 1)


def rfc3339(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RetrainContext:
    """What a retraining Job needs to find its data and register its result with lineage.

    ``parent`` is the ModelVersion object the monitored target serves (the one retrained);
    ``next_version`` the version string to register (:func:`next_version`).
    """

    model_name: str
    parent: str | None = None
    next_version: str | None = None
    current: CurrentData | None = None
    check_time: datetime | None = None
    performance: PerformanceSettings | None = None


RETRAIN_ENV = (
    "MODEL_NAME",
    "MODEL_VERSION",
    "DRIFT_REPORT",
    "REFERENCE_URI",
    "CURRENT_URI",
    "CURRENT_SOURCE",
    "CURRENT_FORMAT",
    "CURRENT_WINDOW",
    "MODELOPS_NAMESPACE",
    "MODELOPS_DRIFT_MONITOR",
    "MODELOPS_DRIFT_CHECK_TIME",
    "MODELOPS_RETRAIN_JOB",
    "MODELOPS_PARENT_VERSION",
    "MODELOPS_NEXT_VERSION",
    "MODELOPS_NEXT_VERSION_NAME",
    "PERFORMANCE_REPORT",
    "PERFORMANCE_SPEC",
    "MODELOPS_RETRAIN_TRIGGER",
)
"""Every variable :func:`build_retrain_job` sets (replacing same-named ones of the template)."""


def retrain_env(
    monitor: MonitorRef,
    job_name: str,
    *,
    model_version: str,
    result: CheckResult,
    reference_uri: str,
    context: RetrainContext,
) -> dict[str, str]:
    """The retraining Job's environment: where the data is, and what to register with which lineage."""
    current = context.current or CurrentData()
    env = {
        "MODEL_NAME": context.model_name,
        "MODEL_VERSION": model_version,
        "DRIFT_REPORT": report_env(result),
        "REFERENCE_URI": reference_uri,
        "CURRENT_URI": current.uri or "",
        "CURRENT_SOURCE": current.source,
        "CURRENT_FORMAT": current.format,
        "CURRENT_WINDOW": current.window,
        "MODELOPS_NAMESPACE": monitor.namespace,
        "MODELOPS_DRIFT_MONITOR": monitor.name,
        "MODELOPS_DRIFT_CHECK_TIME": rfc3339(context.check_time) if context.check_time else "",
        "MODELOPS_RETRAIN_JOB": job_name,
        "MODELOPS_PARENT_VERSION": context.parent or "",
        "MODELOPS_NEXT_VERSION": context.next_version or "",
        "MODELOPS_NEXT_VERSION_NAME": (
            model_version_name(context.model_name, context.next_version) if context.next_version else ""
        ),
        "PERFORMANCE_REPORT": performance_report_env(result),
        # Where the real outcomes are (labels source, join key, task, classes): to train on them.
        "PERFORMANCE_SPEC": (
            json.dumps(context.performance.to_wire(), separators=(",", ":")) if context.performance else ""
        ),
        "MODELOPS_RETRAIN_TRIGGER": trigger_signal(result),
    }
    return env


def build_retrain_job(
    monitor: MonitorRef,
    job_template: Mapping[str, Any],
    *,
    model_name: str,
    model_version: str,
    result: CheckResult,
    reference_uri: str,
    now: datetime,
    context: RetrainContext | None = None,
) -> dict[str, Any]:
    """A batch/v1 Job from the monitor's ``jobTemplate`` (a JobTemplateSpec).

    Every container gets the env of :data:`RETRAIN_ENV` (the model, the drift report as JSON,
    where the reference and current data are, and what to register: next version, parent,
    the monitor and check for lineage), replacing same-named variables of the template. The pod
    runs as ``<monitor>-retrain`` (allowed to create ModelVersions) unless the template names its
    own ServiceAccount. ``now`` is the check time (it names the Job). Raises ValueError when the
    template has no containers (the operator reports it as an invalid spec).
    """
    template = copy.deepcopy(dict(job_template))
    job_spec = template.get("spec")
    pod_spec = (job_spec or {}).get("template", {}).get("spec", {}) if isinstance(job_spec, dict) else {}
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ValueError("jobTemplate.spec.template.spec.containers must list at least one container")
    assert isinstance(job_spec, dict)
    name = retrain_job_name(monitor, now)
    ctx = context or RetrainContext(model_name=model_name, check_time=now)
    injected = retrain_env(
        monitor, name, model_version=model_version, result=result, reference_uri=reference_uri, context=ctx
    )
    for container in containers:
        env = [e for e in container.get("env", []) if e.get("name") not in injected]
        env.extend({"name": k, "value": v} for k, v in injected.items())
        container["env"] = env
    pod_spec.setdefault("restartPolicy", "Never")
    if not pod_spec.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = retrain_service_account_name(monitor)
        pod_spec.setdefault("automountServiceAccountToken", True)
    template_meta = template.get("metadata") or {}
    meta = _metadata(monitor, name, "retrain")
    meta["labels"] = {**template_meta.get("labels", {}), **meta["labels"]}
    annotations = {**template_meta.get("annotations", {}), CHECK_TIME_ANNOTATION: now.isoformat()}
    meta["annotations"] = annotations
    pod_meta = job_spec["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**pod_meta.get("labels", {}), **labels(monitor, "retrain")}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}
