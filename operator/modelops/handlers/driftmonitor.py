"""DriftMonitor handlers: own the check CronJob and its RBAC; act on each new check result.

parse -> observe (the target's ModelVersion, the retraining Job) -> decide
(:mod:`modelops.core.drift_monitor`) -> apply (children, Job) -> status, Events, metrics.
A ModelVersion labelled ``modelops.dev/retrained-by`` (what ``modelops registry register`` sets
inside a retraining Job) wakes its monitor, which links it in its history; so does its retraining
Job finishing, which the monitor then records (the 30 s timer remains the safety net).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import kopf
from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus, MonitorPhase
from modelops.core.conditions import get_condition, kstatus_conditions, set_condition
from modelops.core.drift_cronjob import (
    MONITOR_LABEL,
    RETRAIN_JOB_LABEL,
    RETRAINED_BY_LABEL,
    CheckJobOptions,
    MonitorRef,
    build_cronjob,
    build_role,
    build_role_binding,
    build_service_account,
    retrain_children,
)
from modelops.core.drift_monitor import (
    MonitorDecision,
    MonitorObservations,
    ResolvedTarget,
    TargetDecision,
    decide_target,
    evaluate_check,
    job_state_of,
    track_job,
)
from modelops.core.registry import EventSpec
from modelops.images import operator_image
from modelops.k8s import events
from modelops.k8s.apply import apply, read_job
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_VERSION, Conflict, CustomObjects, NotFound
from modelops.telemetry import forget_drift_metrics, observe_reconcile, set_drift_metrics

KIND = "DriftMonitor"
TARGETS_INDEX = "drift_monitor_targets"
WAIT_FOR_TARGET_SECONDS = 10
Logger = logging.Logger | logging.LoggerAdapter[Any]


def _monitor_ref(body: dict[str, Any]) -> MonitorRef:
    meta = body["metadata"]
    return MonitorRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def resolve_model(api: CustomObjects, namespace: str, spec: DriftMonitorSpec) -> dict[str, Any] | None:
    """The ModelVersion object being monitored: pinned, or what the target deployment serves."""
    name = spec.target.model_version
    if name is None and spec.target.deployment:
        try:
            mdep = api.get(MODEL_DEPLOYMENT, namespace, spec.target.deployment)
        except NotFound:
            return None
        name = (mdep.get("status") or {}).get("stableVersion") or (mdep.get("spec") or {}).get("model", {}).get(
            "versionRef"
        )
    if not name:
        return None
    try:
        return api.get(MODEL_VERSION, namespace, name)
    except NotFound:
        return None


def resolve_reference(spec: DriftMonitorSpec, model: dict[str, Any] | None) -> str | None:
    ref = spec.reference.profile or spec.reference.uri
    if ref:
        return ref
    value = ((model or {}).get("spec") or {}).get("referenceProfile")
    return str(value) if value else None


def _resolved(
    model: dict[str, Any] | None, reference: str | None, registered: dict[str, float] | None
) -> ResolvedTarget:
    name = (model or {}).get("metadata", {}).get("name")
    return ResolvedTarget(model is not None, reference, registered, str(name) if name else None)


_STATUS_FIELDS = frozenset(f.alias or n for n, f in DriftMonitorStatus.model_fields.items())


def status_patch(body: dict[str, Any], status: DriftMonitorStatus) -> dict[str, Any]:
    """``status`` as a merge patch over the stored one: a field it no longer has (``activeJob`` once
    the Job finished, a metric in ``registeredMetrics``) is sent as null, since a merge patch
    removes a key only that way."""
    patch = status.to_wire()
    stored = body.get("status") or {}
    for key in stored.keys() & _STATUS_FIELDS - patch.keys():
        patch[key] = None
    # a map is merged key by key: a metric the new version does not register is sent as null
    old_metrics, new_metrics = stored.get("registeredMetrics"), patch.get("registeredMetrics")
    if isinstance(old_metrics, dict) and isinstance(new_metrics, dict):
        patch["registeredMetrics"] = {**dict.fromkeys(old_metrics), **new_metrics}
    return patch


def registered_metrics(model: dict[str, Any] | None) -> dict[str, float] | None:
    """The monitored ModelVersion's offline ``spec.metrics``, for relative performance thresholds
    (the check job may read only its monitor, so the operator copies them into status)."""
    metrics = ((model or {}).get("spec") or {}).get("metrics")
    if not isinstance(metrics, dict):
        return None
    return {
        str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    } or None


def _write_status(api: CustomObjects, body: dict[str, Any], status: DriftMonitorStatus) -> dict[str, Any]:
    """Write the whole status, guarded by the resourceVersion ``body`` was read at: the check job
    writes this status too, and a write based on a stale read must retry, not overwrite it."""
    meta = body["metadata"]
    try:
        return api.patch_status(
            DRIFT_MONITOR, meta["namespace"], meta["name"], status_patch(body, status), meta.get("resourceVersion")
        )
    except Conflict as exc:
        raise kopf.TemporaryError(f"changed while reconciling, retrying: {exc}", delay=0.5) from exc


def reconcile_children(api: CustomObjects, body: dict[str, Any], logger: Logger, now: dt.datetime) -> None:
    """Create or update the CronJob, its ServiceAccount, Role and RoleBinding; record the resolved reference."""
    meta = body["metadata"]
    generation = int(meta.get("generation", 1))
    status = DriftMonitorStatus.model_validate(body.get("status") or {})
    with observe_reconcile(KIND) as outcome:
        try:
            spec = DriftMonitorSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            outcome.result = "invalid"
            message = describe_spec_error(exc)
            bad = status.model_copy(
                update={
                    "phase": MonitorPhase.ERROR,
                    "observed_generation": generation,
                    "conditions": kstatus_conditions(
                        set_condition(status.conditions, "Ready", "False", "InvalidSpec", message, now, generation),
                        stalled=("InvalidSpec", message),
                        reconciling=None,
                        idle_reason="InvalidSpec",
                        now=now,
                        observed_generation=generation,
                    ),
                }
            )
            _write_status(api, body, bad)
            events.record(body, [EventSpec("Warning", "InvalidSpec", message)])
            return
        monitor = _monitor_ref(body)
        model = resolve_model(api, monitor.namespace, spec)
        reference = resolve_reference(spec, model)
        registered = registered_metrics(model)
        children = [
            build_service_account(monitor),
            build_role(monitor, spec, record_events=True),
            build_role_binding(monitor),
            build_cronjob(monitor, spec, CheckJobOptions(image=operator_image())),
            *retrain_children(monitor, spec),
        ]
        changed = []
        for child in children:
            try:
                result, _ = apply(api.api, child)
            except Conflict as exc:
                raise kopf.TemporaryError(str(exc), delay=1) from exc
            if result in ("created", "updated"):
                changed.append(f"{child['kind']}/{child['metadata']['name']} {result}")
        decision = decide_target(monitor, spec, status, _resolved(model, reference, registered), generation, now)
        waiting = decision.waiting
        if decision.changed:
            _write_status(api, body, decision.status)
        evs = [EventSpec("Normal", "ChildrenApplied", "; ".join(changed))] if changed else []
        events.record(body, evs + _ready_events(status, decision))
        for line in changed:
            logger.info(line)
        if waiting:  # nothing announces the target's arrival to this handler: look again
            outcome.result = "retry"
            raise kopf.TemporaryError(decision.ready[2], delay=WAIT_FOR_TARGET_SECONDS)


def _ready_events(status: DriftMonitorStatus, decision: TargetDecision) -> list[EventSpec]:
    """A Warning when Ready turns False for a new reason, and the decision's own Events."""
    evs = list(decision.events)
    previous = get_condition(status.conditions, "Ready")
    ready = decision.ready
    if ready[0] == "False" and (previous is None or previous.reason != ready[1]):
        evs.append(EventSpec("Warning", ready[1], ready[2]))
    return evs


def refresh_target(api: CustomObjects, body: dict[str, Any], now: dt.datetime) -> bool:
    """The target ModelDeployment's stable version changed (a promotion, an undo): resolve the
    monitored ModelVersion again and write ``resolvedReference``, ``registeredMetrics`` and Ready,
    only when they changed. Returns whether it wrote. Leaves a spec the operator has not observed
    yet to the spec handler (which resolves the target itself)."""
    meta = body["metadata"]
    try:
        spec = DriftMonitorSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return False  # reconcile_children reports it
    status = DriftMonitorStatus.model_validate(body.get("status") or {})
    generation = int(meta.get("generation", 1))
    if spec.target.model_version is not None or spec.target.deployment is None:
        return False
    if status.observed_generation != generation:
        return False
    model = resolve_model(api, meta["namespace"], spec)
    resolved = _resolved(model, resolve_reference(spec, model), registered_metrics(model))
    decision = decide_target(_monitor_ref(body), spec, status, resolved, generation, now)
    if not decision.changed:
        return False
    _write_status(api, body, decision.status)
    events.record(body, _ready_events(status, decision))
    return True


def _versions_of(api: CustomObjects, namespace: str, model_name: str) -> tuple[str, ...]:
    """Every version string of ``model_name`` in the namespace (labels may be missing: filter by spec)."""
    return tuple(
        str(o["spec"].get("version", ""))
        for o in api.list(MODEL_VERSION, namespace)
        if (o.get("spec") or {}).get("modelName") == model_name
    )


def _registered_by(api: CustomObjects, namespace: str, job: str) -> tuple[str, ...]:
    """ModelVersions labelled as registered by retraining Job ``job``, oldest first."""
    found = api.list(MODEL_VERSION, namespace, label_selector=f"{RETRAIN_JOB_LABEL}={job}")
    found.sort(key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]))
    return tuple(o["metadata"]["name"] for o in found)


def _observe(
    api: CustomObjects, namespace: str, spec: DriftMonitorSpec, status: DriftMonitorStatus
) -> MonitorObservations:
    job_state = "absent"
    registered: tuple[str, ...] = ()
    if status.active_job is not None:
        # The Job first: a Job that registers and then completes has its version listed after.
        job_state = job_state_of(read_job(api.api, namespace, status.active_job.name))
        registered = _registered_by(api, namespace, status.active_job.name)
    model = resolve_model(api, namespace, spec) if spec.policy.action == "retrain" else None
    mspec = (model or {}).get("spec") or {}
    model_name = mspec.get("modelName")
    new_check = status.last_check_time is not None and (
        status.evaluated_check_time is None or status.last_check_time > status.evaluated_check_time
    )
    # The model's versions (for the next version's number) only when a new check may create a Job.
    versions = _versions_of(api, namespace, model_name) if model_name and new_check else ()
    return MonitorObservations(
        job_state=job_state,  # type: ignore[arg-type]
        model_name=model_name,
        model_version=mspec.get("version"),
        parent=(model or {}).get("metadata", {}).get("name"),
        versions=versions,
        registered=registered,
    )


def apply_monitor_decision(api: CustomObjects, body: dict[str, Any], decision: MonitorDecision) -> None:
    """Create the retraining Job first (idempotent by name), then record it in status."""
    if decision.job is not None:
        try:
            apply(api.api, decision.job, immutable=True)
        except Conflict as exc:
            raise kopf.TemporaryError(str(exc), delay=1) from exc
    if decision.changed:
        _write_status(api, body, decision.status)
    events.record(body, decision.events)


def evaluate(api: CustomObjects, body: dict[str, Any], now: dt.datetime) -> None:
    """Act on a new check result and follow the retraining Job; a no-op when nothing is new."""
    meta = body["metadata"]
    try:
        spec = DriftMonitorSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # reconcile_children reports it
    status = DriftMonitorStatus.model_validate(body.get("status") or {})
    set_drift_metrics(meta["namespace"], meta["name"], status)
    new_check = status.last_check_time is not None and (
        status.evaluated_check_time is None or status.last_check_time > status.evaluated_check_time
    )
    if not new_check and status.active_job is None:
        return
    with observe_reconcile(KIND):
        obs = _observe(api, meta["namespace"], spec, status)
        tracked = track_job(status, obs, now)
        decision = evaluate_check(_monitor_ref(body), spec, tracked.status, obs, status.resolved_reference or "", now)
        merged = MonitorDecision(
            decision.status,
            tracked.events + decision.events,
            decision.job,
            changed=tracked.changed or decision.changed,
        )
        apply_monitor_decision(api, body, merged)


def register(registry: kopf.OperatorRegistry, api_factory: Any) -> None:
    group, version, plural = "modelops.dev", "v1alpha1", "driftmonitors"

    @kopf.on.resume(group, version, plural, registry=registry)
    @kopf.on.create(group, version, plural, registry=registry)
    @kopf.on.update(group, version, plural, field="spec", registry=registry)
    def drift_monitor(**kwargs: Any) -> None:
        api, body = api_factory(), dict(kwargs["body"])
        reconcile_children(api, body, kwargs["logger"], dt.datetime.now(dt.UTC))
        # Also settle a result that arrived while the operator was down (idempotent; a stale
        # body is a 409 and kopf retries the handler on fresh state).
        evaluate(
            api,
            api.get(DRIFT_MONITOR, body["metadata"]["namespace"], body["metadata"]["name"]),
            dt.datetime.now(dt.UTC),
        )

    @kopf.index(group, version, plural, id=TARGETS_INDEX, registry=registry)
    def drift_monitor_targets(**kwargs: Any) -> dict[tuple[str, str], str]:
        """Monitors by the ModelDeployment whose stable version they follow (none when pinned)."""
        target = (kwargs["body"].get("spec") or {}).get("target") or {}
        deployment = target.get("deployment")
        if not isinstance(deployment, str) or not deployment or target.get("modelVersion"):
            return {}
        return {(str(kwargs["namespace"]), deployment): str(kwargs["name"])}

    stables: dict[tuple[str, str], str | None] = {}
    stables_guard = threading.Lock()

    @kopf.on.event(group, version, "modeldeployments", registry=registry)
    def monitored_deployment_event(**kwargs: Any) -> None:
        """A ModelDeployment's stable version changed: its monitors resolve their reference and
        registered metrics again (each writes only if they changed). Nothing is read unless the
        stable changed and a monitor follows the deployment; the first listing at start-up is
        left to the monitors' own resume handlers."""
        namespace, name = str(kwargs["namespace"]), str(kwargs["name"])
        key = (namespace, name)
        if kwargs.get("type") == "DELETED":
            with stables_guard:
                stables.pop(key, None)
            return
        stable = (kwargs["body"].get("status") or {}).get("stableVersion")
        with stables_guard:
            known, previous = key in stables, stables.get(key)
            stables[key] = stable
        if (known and previous == stable) or (not known and kwargs.get("type") is None):
            return
        try:
            monitors = sorted(kwargs[TARGETS_INDEX][key])
        except KeyError:
            return
        api = api_factory()
        for monitor in monitors:
            for _ in range(3):  # a check job's status write in between: read again
                try:
                    refresh_target(api, api.get(DRIFT_MONITOR, namespace, monitor), dt.datetime.now(dt.UTC))
                    break
                except NotFound:
                    break
                except kopf.TemporaryError as exc:
                    kwargs["logger"].debug("refreshing DriftMonitor %s: %s", monitor, exc)

    @kopf.on.event(group, version, plural, registry=registry)
    def drift_monitor_event(**kwargs: Any) -> None:
        if kwargs.get("type") == "DELETED":
            return
        try:
            evaluate(api_factory(), dict(kwargs["body"]), dt.datetime.now(dt.UTC))
        except kopf.TemporaryError as exc:
            kwargs["logger"].info("will retry on the next event or timer: %s", exc)

    @kopf.timer(group, version, plural, interval=30, idle=10, registry=registry)
    def drift_monitor_timer(**kwargs: Any) -> None:
        """Safety net for missed events (a finished retraining Job does not touch the monitor)."""
        try:
            evaluate(api_factory(), dict(kwargs["body"]), dt.datetime.now(dt.UTC))
        except kopf.TemporaryError as exc:  # a newer version exists: the event handler has it
            kwargs["logger"].debug("timer skipped: %s", exc)

    @kopf.on.event(group, version, "modelversions", labels={RETRAINED_BY_LABEL: kopf.PRESENT}, registry=registry)
    def retrained_version_event(**kwargs: Any) -> None:
        """A retraining Job registered a version: let its monitor link it now, not at the next timer."""
        if kwargs.get("type") not in ("ADDED", None):
            return
        body = kwargs["body"]
        namespace = body["metadata"]["namespace"]
        api = api_factory()
        try:
            monitor = api.get(DRIFT_MONITOR, namespace, body["metadata"]["labels"][RETRAINED_BY_LABEL])
        except NotFound:
            return
        try:
            evaluate(api, monitor, dt.datetime.now(dt.UTC))
        except kopf.TemporaryError as exc:  # the timer or the next event settles it
            kwargs["logger"].info("will link on the next event or timer: %s", exc)

    @kopf.on.event(
        "batch",
        "v1",
        "jobs",
        labels={"app.kubernetes.io/component": "retrain", MONITOR_LABEL: kopf.PRESENT},
        registry=registry,
    )
    def retrain_job_event(**kwargs: Any) -> None:
        """A retraining Job finished: let its monitor (the Job's owner) record how, now."""
        body = kwargs["body"]
        if kwargs.get("type") == "DELETED" or job_state_of(body) == "active":
            return
        owner = next((o for o in body["metadata"].get("ownerReferences") or [] if o.get("kind") == KIND), None)
        if owner is None:
            return
        api = api_factory()
        try:
            monitor = api.get(DRIFT_MONITOR, body["metadata"]["namespace"], owner["name"])
        except NotFound:
            return
        try:
            evaluate(api, monitor, dt.datetime.now(dt.UTC))
        except kopf.TemporaryError as exc:
            kwargs["logger"].info("will record on the next event or timer: %s", exc)

    @kopf.on.delete(group, version, plural, registry=registry, optional=True)
    def drift_monitor_deleted(**kwargs: Any) -> None:
        forget_drift_metrics(str(kwargs["namespace"]), str(kwargs["name"]))


__all__ = ["evaluate", "reconcile_children", "refresh_target", "register"]
