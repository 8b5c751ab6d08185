"""ModelDeployment handlers: parse -> observe -> decide (:mod:`modelops.core.rollout`) -> apply ->
status, Events, metrics.

How a rollout moves over time. Every change re-runs the reconcile at once: the ModelDeployment
itself (its spec, or a control field `modelops rollout` writes to its status), its Deployments
(pods becoming ready), and the ModelVersions it may serve (a version approved for Production
starts its rollout with no other edit: the ModelVersion's own event pokes the deployments of its
model directly, which writes nothing on them, unlike an annotation bump). A timer ticks every
second while a rollout is active, for what no event announces: a pause ending, a measurement
falling due, a deadline passing. The timer is a clock, not a memory: all state is in status, so a
restarted operator resumes where the last one stopped.

Reconciles of one ModelDeployment are serialised by a lock and start from a fresh read, so a
stale event body never drives traffic backwards; every status write carries the resourceVersion
the decision was made from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import kopf
from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RolloutPhase
from modelops.core.conditions import get_condition, set_condition
from modelops.core.model_server_manifests import ServerOptions
from modelops.core.registry import EventSpec
from modelops.core.rollout import decide
from modelops.images import operator_image
from modelops.k8s import events
from modelops.k8s.resources import MODEL_DEPLOYMENT, Conflict, CustomObjects, NotFound
from modelops.k8s.rollout_io import (
    Observed,
    apply_decision,
    observe,
    owner_of,
    sync_model_versions,
    take_measurements,
    write_status,
)
from modelops.telemetry import (
    forget_analysis_measurements,
    forget_rollout_metrics,
    observe_reconcile,
    set_rollout_metrics,
)

KIND = "ModelDeployment"
GROUP, VERSION, PLURAL = "modelops.dev", "v1alpha1", "modeldeployments"
TICK_SECONDS = 1.0
ACTIVE_PHASES = (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED)
Logger = logging.Logger | logging.LoggerAdapter[Any]

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((namespace, name), threading.Lock())


def is_active(body: Mapping[str, Any]) -> bool:
    """A rollout is underway: the timer runs (pause clocks, measurements, deadlines)."""
    status = body.get("status") or {}
    return bool(status.get("canaryVersion")) or status.get("phase") in ACTIVE_PHASES


def _invalid(api: CustomObjects, body: dict[str, Any], exc: ValidationError, now: dt.datetime) -> None:
    """Name the field, hold everything as it is, and say so once (no retry storm)."""
    generation = int(body["metadata"].get("generation") or 1)
    message = describe_spec_error(exc)
    status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    conds = set_condition(status.conditions, "Ready", "False", "InvalidSpec", message, now, generation)
    conds = set_condition(conds, "Stalled", "True", "InvalidSpec", message, now, generation)
    conds = set_condition(conds, "Reconciling", "False", "InvalidSpec", message, now, generation)
    new = status.model_copy(update={"conditions": conds, "observed_generation": generation, "message": message})
    if new == status:
        return
    write_status(api, body, new)
    previous = get_condition(status.conditions, "Ready")
    if previous is None or (previous.reason, previous.message) != ("InvalidSpec", message):
        events.record(body, [EventSpec("Warning", "InvalidSpec", message)])


def _with_measurements(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observed: Observed, body: dict[str, Any], now: dt.datetime
) -> Any:
    decision = decide(spec, status, observed.obs, now)
    if not decision.measure:
        return decision
    results = take_measurements(owner_of(body), spec, decision, observed.versions, now)
    return decide(spec, status, replace(observed.obs, measurements=results), now)


def reconcile(api: CustomObjects, namespace: str, name: str, logger: Logger, now_fn: Any = None) -> None:
    """One reconcile of ModelDeployment ``namespace/name`` from a fresh read."""
    clock = now_fn or (lambda: dt.datetime.now(dt.UTC))
    with _lock(namespace, name), observe_reconcile(KIND) as outcome:
        try:
            body = api.get(MODEL_DEPLOYMENT, namespace, name)
        except NotFound:
            outcome.result = "gone"
            return
        if body["metadata"].get("deletionTimestamp"):
            return
        now = clock()
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            outcome.result = "invalid"
            with contextlib.suppress(Conflict):  # the newer object has its own event
                _invalid(api, body, exc, now)
            return
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
        observed = observe(api, body, spec)
        decision = _with_measurements(spec, status, observed, body, now)
        try:
            changes = apply_decision(api, body, spec, decision, observed, ServerOptions(image=operator_image()))
            if decision.changed:
                write_status(api, body, decision.status)
        except Conflict as exc:
            outcome.result = "retry"
            logger.debug("changed while reconciling, the newer version is reconciled next: %s", exc)
            return
        events.record(body, decision.events)
        for line in changes:
            logger.info(line)
        sync_model_versions(api, owner_of(body), decision.status, observed)
        new = decision.status
        set_rollout_metrics(namespace, name, str(new.phase), new.canary_weight, new.current_step_index)


def _safely(api_factory: Any, namespace: str, name: str, logger: Logger) -> None:
    """Event and timer paths: a failure is logged; the next event or tick retries on fresh state."""
    try:
        reconcile(api_factory(), namespace, name, logger)
    except Exception as exc:  # keep serving every other object
        logger.warning("reconcile of %s/%s failed, retrying on the next event or tick: %s", namespace, name, exc)


def _owner_name(body: Mapping[str, Any]) -> str | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["name"])
    return None


def _tracks_model(md: Mapping[str, Any], mv: Mapping[str, Any]) -> bool:
    model = (md.get("spec") or {}).get("model") or {}
    status = md.get("status") or {}
    name = mv["metadata"]["name"]
    return (
        model.get("versionRef") == name
        or model.get("modelName") == (mv.get("spec") or {}).get("modelName")
        or name in (status.get("stableVersion"), status.get("canaryVersion"))
    )


def register(registry: kopf.OperatorRegistry, api_factory: Any) -> None:
    """Register the ModelDeployment handlers; ``api_factory()`` returns a CustomObjects."""

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def model_deployment_event(**kwargs: Any) -> None:
        if kwargs.get("type") == "DELETED":
            return
        _safely(api_factory, str(kwargs["namespace"]), str(kwargs["name"]), kwargs["logger"])

    @kopf.timer(
        GROUP, VERSION, PLURAL, interval=TICK_SECONDS, when=lambda body, **_: is_active(body), registry=registry
    )
    def model_deployment_tick(**kwargs: Any) -> None:
        _safely(api_factory, str(kwargs["namespace"]), str(kwargs["name"]), kwargs["logger"])

    @kopf.on.event("apps", "v1", "deployments", labels={"modelops.dev/deployment": kopf.PRESENT}, registry=registry)
    def model_server_event(**kwargs: Any) -> None:
        owner = _owner_name(kwargs["body"])
        if owner is not None:
            _safely(api_factory, str(kwargs["namespace"]), owner, kwargs["logger"])

    @kopf.on.event(GROUP, VERSION, "modelversions", registry=registry)
    def model_version_event(**kwargs: Any) -> None:
        """Registry-driven delivery: a version becoming eligible reaches its deployments at once."""
        namespace, body = str(kwargs["namespace"]), kwargs["body"]
        try:
            deployments = api_factory().list(MODEL_DEPLOYMENT, namespace)
        except Exception as exc:
            kwargs["logger"].warning("cannot list ModelDeployments for %s: %s", kwargs["name"], exc)
            return
        for md in deployments:
            if _tracks_model(md, body):
                _safely(api_factory, namespace, md["metadata"]["name"], kwargs["logger"])

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    def model_deployment_deleted(**kwargs: Any) -> None:
        namespace, name = str(kwargs["namespace"]), str(kwargs["name"])
        forget_rollout_metrics(namespace, name)
        forget_analysis_measurements(namespace, name)
        try:
            body = dict(kwargs["body"])
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
            api = api_factory()
            sync_model_versions(api, owner_of(body), None, observe(api, body, spec))
        except Exception as exc:  # best effort: children are garbage-collected
            kwargs["logger"].info("could not clear ModelVersion deployments of %s: %s", name, exc)


__all__ = ["is_active", "reconcile", "register"]
