"""ModelDeployment handlers: parse -> observe -> decide (:mod:`modelops.core.rollout`) -> apply ->
status, Events, metrics.

How a rollout moves over time. Every change re-runs the reconcile at once: the ModelDeployment
itself (its spec, or a control field `modelops rollout` writes to its status), its Deployments
(pods becoming ready), and the ModelVersions it may serve (a version approved for Production
starts its rollout with no other edit: the ModelVersion's own event pokes the deployments of its
model directly, which writes nothing on them, unlike an annotation bump). While a rollout is
active, a clock (one kopf daemon per ModelDeployment) reconciles it for what no event announces:
at the decision's ``wait_until`` exactly (a pause ending, a measurement falling due, a deadline
passing), and otherwise by a re-check that backs off while nothing changes
(:mod:`modelops.core.rollout_clock`). The clock is not a memory: all state is in status, so a
restarted operator resumes where the last one stopped.

Reconciles of one ModelDeployment are serialised by a lock and start from a fresh read, so a
stale event body never drives traffic backwards; every status write carries the resourceVersion
the decision was made from.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import kopf
from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RolloutPhase
from modelops.api.modelversion import Stage
from modelops.core.conditions import get_condition, set_condition
from modelops.core.model_server_manifests import DeploymentRef, ServerOptions
from modelops.core.registry import EventSpec, RolledBackCanary, rollback_stage_changes
from modelops.core.rollout import Decision, decide, rolled_back_at
from modelops.core.rollout_clock import next_check
from modelops.core.version_selection import VersionInfo
from modelops.handlers.modelversion import apply_stage_changes
from modelops.images import operator_image
from modelops.k8s import events
from modelops.k8s.observe import sibling_of
from modelops.k8s.resources import MODEL_VERSION, Conflict, CustomObjects
from modelops.k8s.rollout_io import (
    Catalog,
    Observed,
    apply_decision,
    catalog_entry,
    observe,
    owner_of,
    read_object,
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
CLOCK_SLICE_SECONDS = 1.0
"""The longest a rollout's clock sleeps before it looks at its due time again (an event's
reconcile may have brought it forward)."""
CLOCK_MARGIN_SECONDS = 0.005
"""Woken this much after the due time, so the reconcile's own clock has passed it."""
ACTIVE_PHASES = (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED)
Logger = logging.Logger | logging.LoggerAdapter[Any]
Key = tuple[str, str]
VERSIONS_INDEX = "model_versions"
TRACKING_INDEX = "model_deployments_tracking"

MAX_CONCURRENT_RECONCILES = 2
"""ModelDeployment reconciles working at once (as controller-runtime's MaxConcurrentReconciles).
They are CPU-bound Python sharing one interpreter lock: more threads only stretch each one and
take the lock from the other kinds' handlers. A reconcile gives its slot up while it waits for
Prometheus."""


class Slots:
    """At most ``n`` reconciles at once; a re-check waits while anything else is waiting.

    Re-checks only look for what no event announces (see :mod:`modelops.core.rollout_clock`):
    when many rollouts move at once, a pause that ends or a change someone made must not queue
    behind them. Urgent waiters are served before any re-check (among themselves in no set order);
    a freed slot wakes one waiter, not all."""

    def __init__(self, n: int) -> None:
        guard = threading.Lock()
        self._urgent, self._rechecks = threading.Condition(guard), threading.Condition(guard)
        self._free = n
        self._urgent_waiting = 0

    def acquire(self, recheck: bool = False) -> None:
        with self._urgent:
            if recheck:
                while self._free == 0 or self._urgent_waiting:
                    self._rechecks.wait()
            else:
                self._urgent_waiting += 1
                try:
                    while self._free == 0:
                        self._urgent.wait()
                finally:
                    self._urgent_waiting -= 1
            self._free -= 1
            self._wake_next()

    def release(self) -> None:
        with self._urgent:
            self._free += 1
            self._wake_next()

    def _wake_next(self) -> None:
        if self._free:
            (self._urgent if self._urgent_waiting else self._rechecks).notify()

    @contextlib.contextmanager
    def held(self, recheck: bool = False) -> Iterator[None]:
        self.acquire(recheck)
        try:
            yield
        finally:
            self.release()


_slots = Slots(MAX_CONCURRENT_RECONCILES)
CLOCK_THREADS = 64
"""Threads for the clocks' reconciles, most of them waiting for a slot: the event loop's default
pool (six threads on two cores) would queue a pause that ends behind re-checks waiting there."""
_locks: dict[Key, threading.Lock] = {}
_written: dict[Key, str] = {}
"""The resourceVersion each ModelDeployment's last status write produced."""
_children_written: dict[Key, str] = {}
"""The resourceVersion each model-server Deployment's last write by a reconcile produced."""
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((namespace, name), threading.Lock())


def _remember_write(key: Key, written: Mapping[str, Any]) -> None:
    with _locks_guard:
        _written[key] = str((written.get("metadata") or {}).get("resourceVersion"))


def _remember_child(kind: str, namespace: str, name: str, resource_version: str) -> None:
    with _locks_guard:
        _children_written[(namespace, name)] = resource_version


def is_own_child_write(key: Key, resource_version: object) -> bool:
    """The Deployment event is the echo of a reconcile's own write: the decision that wrote it
    already counted on it, and the Deployment controller's next status update has its own event."""
    with _locks_guard:
        return resource_version is not None and _children_written.get(key) == str(resource_version)


def is_own_write(key: Key, resource_version: object) -> bool:
    """The event is the echo of our own last status write: deciding again on it changes nothing
    (a decision applied is a fixpoint; what else changes has its own event or the clock)."""
    with _locks_guard:
        return resource_version is not None and _written.get(key) == str(resource_version)


@dataclass(frozen=True)
class Reconciled:
    """What one reconcile leaves for the clock."""

    now: dt.datetime
    active: bool
    """A rollout is underway (see :func:`is_active`)."""
    changed: bool
    """Status, a child or an Event was written."""
    wait_until: dt.datetime | None = None
    """The decision's next due time (pause end, measurement, deadline)."""


@dataclass
class _Clock:
    due: dt.datetime | None
    """None: nothing is due without an event (no rollout underway)."""
    quiet_since: dt.datetime
    recheck: bool = False
    """``due`` is a re-check, not the decision's ``wait_until``."""


class Clocks:
    """When each ModelDeployment is reconciled next without an event (this process's memory only:
    after a restart, the first reconcile of each one sets it again from status)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._clocks: dict[Key, _Clock] = {}

    def record(self, key: Key, outcome: Reconciled) -> None:
        with self._guard:
            clock = self._clocks.setdefault(key, _Clock(None, outcome.now))
            if outcome.changed:
                clock.quiet_since = outcome.now
            clock.due = next_check(outcome.now, outcome.wait_until, clock.quiet_since) if outcome.active else None
            clock.recheck = clock.due is not None and (outcome.wait_until is None or clock.due < outcome.wait_until)

    def due(self, key: Key) -> dt.datetime | None:
        with self._guard:
            clock = self._clocks.get(key)
            return clock.due if clock is not None else None

    def is_recheck(self, key: Key) -> bool:
        """What falls due is a re-check (nothing the decision waits for)."""
        with self._guard:
            clock = self._clocks.get(key)
            return clock is not None and clock.recheck

    def forget(self, key: Key) -> None:
        with self._guard:
            self._clocks.pop(key, None)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def _picks_versions(status: ModelDeploymentStatus, decision: Decision, observed: Observed) -> bool:
    new = decision.status
    moved = (status.stable_version, status.canary_version) != (new.stable_version, new.canary_version)
    return moved or (decision.changed and observed.obs.selection.version is None)


def _decide(
    api: CustomObjects,
    body: dict[str, Any],
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    now: dt.datetime,
    catalog: Catalog | None,
) -> tuple[Observed, Decision]:
    """Observe and decide, measuring what is due.

    The catalog (the watch's view of the ModelVersions) serves every reconcile; a decision that
    would change which versions run (a first deploy, a canary started, superseded or cancelled)
    or that finds no version to run is made again on fresh reads, so a catalog lagging behind the
    registry under load never picks a version. Nothing else a decision does reads a version's
    mutable fields."""
    observed = observe(api, body, spec, catalog)
    decision = decide(spec, status, observed.obs, now)
    if catalog is not None and _picks_versions(status, decision, observed):
        observed = observe(api, body, spec)
        decision = decide(spec, status, observed.obs, now)
    if not decision.measure:
        return observed, decision
    _slots.release()  # held by the calling reconcile; measuring is waiting on Prometheus
    try:
        results = take_measurements(owner_of(body), spec, decision, observed.versions, now)
    finally:
        _slots.acquire()  # a measurement fell due: not a re-check
    return observed, decide(spec, status, replace(observed.obs, measurements=results), now)


def reconcile(
    api: CustomObjects,
    namespace: str,
    name: str,
    logger: Logger,
    now_fn: Callable[[], dt.datetime] | None = None,
    catalog: Catalog | None = None,
    recheck: bool = False,
) -> Reconciled | None:
    """One reconcile of ModelDeployment ``namespace/name`` from a fresh read; None when it is gone
    or being deleted. ``catalog``: the ModelVersions as the operator's watch saw them (else read);
    ``recheck``: nothing announced or fell due, so it yields its turn (see :class:`Slots`)."""
    clock = now_fn or _utcnow
    with _lock(namespace, name), _slots.held(recheck), observe_reconcile(KIND) as outcome:
        body = read_object(api.api, "ModelDeployment", namespace, name)
        if body is None:
            outcome.result = "gone"
            return None
        if body["metadata"].get("deletionTimestamp"):
            return None
        now = clock()
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            outcome.result = "invalid"
            with contextlib.suppress(Conflict):  # the newer object has its own event
                _invalid(api, body, exc, now)
            return Reconciled(now, active=is_active(body), changed=False)
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
        observed, decision = _decide(api, body, spec, status, now, catalog)
        try:
            changes = apply_decision(
                api, body, spec, decision, observed, ServerOptions(image=operator_image()), _remember_child
            )
            if decision.changed:
                _remember_write((namespace, name), write_status(api, body, decision.status))
        except Conflict as exc:
            outcome.result = "retry"
            logger.debug("changed while reconciling, the newer version is reconciled next: %s", exc)
            return Reconciled(now, active=True, changed=True)
        new = decision.status
        set_rollout_metrics(namespace, name, str(new.phase), new.canary_weight, new.current_step_index)
        events.record(body, decision.events)
        for line in changes:
            logger.info(line)
        synced = sync_model_versions(api, owner_of(body), decision.status, observed)
        staged = registry_after_rollback(api, owner_of(body), new, observed, catalog, logger, now)
        active = bool(new.canary_version) or new.phase in ACTIVE_PHASES
        changed = decision.changed or bool(changes) or bool(decision.events) or bool(synced) or bool(staged)
        return Reconciled(now, active=active, changed=changed, wait_until=decision.wait_until)


def registry_after_rollback(
    api: CustomObjects,
    owner: DeploymentRef,
    status: ModelDeploymentStatus,
    observed: Observed,
    catalog: Catalog | None,
    logger: Logger,
    now: dt.datetime,
) -> list[str]:
    """After a canary rollback, the registry's Production version is the one serving stable
    traffic (:func:`modelops.core.registry.rollback_stage_changes`). Reads nothing unless the
    observed stages say a change may be due; returns the versions written."""
    rolled_back = rolled_back_at(status)
    if rolled_back is None or status.failed_version is None:
        return []
    failed = observed.versions.get(status.failed_version)
    stable = observed.versions.get(status.stable_version or "")
    if failed is None:
        return []
    if stable is not None and stable.model_name != failed.model_name:
        stable = None  # another model's version: its Production is not this model's
    if failed.stage != Stage.PRODUCTION and (stable is None or stable.stage != Stage.ARCHIVED):
        return []
    failed_obj = read_object(api.api, "ModelVersion", owner.namespace, failed.name)
    stable_obj = read_object(api.api, "ModelVersion", owner.namespace, stable.name) if stable is not None else None
    if failed_obj is None:
        return []
    elsewhere = any(
        d.get("track") == "stable" and (d.get("namespace"), d.get("name")) != (owner.namespace, owner.name)
        for d in (failed_obj.get("status") or {}).get("deployments") or []
    )
    of_model = (
        catalog.of_model(owner.namespace, failed.model_name)
        if catalog is not None
        else [
            o
            for o in api.list(MODEL_VERSION, owner.namespace)
            if (o.get("spec") or {}).get("modelName") == failed.model_name
        ]
    )
    others = tuple(
        sorted(
            str(o["metadata"]["name"])
            for o in of_model
            if (o.get("status") or {}).get("stage") == Stage.PRODUCTION
            and o["metadata"]["name"] not in (failed.name, stable.name if stable is not None else None)
        )
    )
    changes = rollback_stage_changes(
        RolledBackCanary(
            deployment=owner.name,
            failed=sibling_of(failed_obj),
            stable=sibling_of(stable_obj) if stable_obj is not None else None,
            rolled_back_at=rolled_back[0],
            cause=rolled_back[1],
            serves_stable_elsewhere=elsewhere,
            other_production=others,
        ),
        now,
    )
    try:
        apply_stage_changes(api, owner.namespace, changes, logger)
    except Conflict as exc:  # the version changed meanwhile: its event reconciles this deployment again
        logger.debug("registry change after the rollback of %s deferred: %s", failed.name, exc)
    return [c.name for c in changes]


def _safely(
    api_factory: Any,
    clocks: Clocks,
    namespace: str,
    name: str,
    logger: Logger,
    catalog: Catalog | None = None,
    recheck: bool = False,
) -> None:
    """Event and clock paths: a failure is logged and re-checked by the clock (or the next event)
    on fresh state; the outcome sets the clock."""
    key = (namespace, name)
    try:
        outcome = reconcile(api_factory(), namespace, name, logger, catalog=catalog, recheck=recheck)
    except Exception as exc:  # keep serving every other object
        logger.warning("reconcile of %s/%s failed, retrying on the next event or re-check: %s", namespace, name, exc)
        outcome = Reconciled(_utcnow(), active=True, changed=False)
    if outcome is None:
        clocks.forget(key)
    else:
        clocks.record(key, outcome)


class _IndexCatalog:
    """The ModelVersions in kopf's index (filled from the watch before any handler runs)."""

    def __init__(self, index: Mapping[Any, Any]) -> None:
        self._index = index

    def _get(self, key: tuple[str, str, str]) -> tuple[dict[str, Any], ...]:
        try:
            return tuple(self._index[key])
        except KeyError:
            return ()

    def of_model(self, namespace: str, model: str) -> tuple[dict[str, Any], ...]:
        return self._get(("model", namespace, model))

    def named(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._get(("name", namespace, name))
        return found[0] if found else None


def _catalog(kwargs: Mapping[str, Any]) -> Catalog | None:
    """The catalog over kopf's index, which kopf passes to every handler as a kwarg."""
    index = kwargs.get(VERSIONS_INDEX)
    return _IndexCatalog(index) if index is not None else None


def _owner_name(body: Mapping[str, Any]) -> str | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["name"])
    return None


def tracked_keys(md: Mapping[str, Any]) -> set[tuple[str, str]]:
    """What a ModelDeployment follows in the registry: ``("version", name)`` for the version it
    names and those its status serves, ``("model", name)`` for the model whose newest version it tracks."""
    model = (md.get("spec") or {}).get("model") or {}
    status = md.get("status") or {}
    keys = {("model", model.get("modelName"))}
    keys |= {
        ("version", v) for v in (model.get("versionRef"), status.get("stableVersion"), status.get("canaryVersion"))
    }
    return {(kind, str(value)) for kind, value in keys if isinstance(value, str) and value}


def _tracking(index: Mapping[Any, Any], namespace: str, mv: Mapping[str, Any]) -> set[str]:
    """The ModelDeployments of ``namespace`` that follow ModelVersion ``mv`` (by the index of them)."""
    names: set[str] = set()
    keys = (("version", str(mv["metadata"]["name"])), ("model", str((mv.get("spec") or {}).get("modelName") or "")))
    for kind, value in keys:
        with contextlib.suppress(KeyError):
            names.update(index[(namespace, kind, value)])
    return names


def register(registry: kopf.OperatorRegistry, api_factory: Any) -> None:
    """Register the ModelDeployment handlers; ``api_factory()`` returns a CustomObjects."""
    clocks = Clocks()
    clock_threads = ThreadPoolExecutor(CLOCK_THREADS, thread_name_prefix="rollout-clock")
    seen_versions: dict[Key, VersionInfo] = {}
    seen_guard = threading.Lock()

    @kopf.index(GROUP, VERSION, "modelversions", id=VERSIONS_INDEX, registry=registry)
    def model_versions(**kwargs: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Every ModelVersion by model and by name, trimmed: a reconcile reads its versions from
        here, not from the API server (a version's change reaches the index before its event
        reaches any handler)."""
        entry = catalog_entry(kwargs["body"])
        namespace, model = str(kwargs["namespace"]), str((entry["spec"] or {}).get("modelName", ""))
        return {("model", namespace, model): entry, ("name", namespace, str(kwargs["name"])): entry}

    @kopf.index(GROUP, VERSION, PLURAL, id=TRACKING_INDEX, registry=registry)
    def model_deployments_tracking(**kwargs: Any) -> dict[tuple[str, str, str], str]:
        """Each ModelDeployment under what it follows (see :func:`tracked_keys`): a ModelVersion's
        event finds the deployments to reconcile here, not by listing every one of them. Lag is
        harmless: a deployment's own event reconciles it (on fresh reads) after the index has it."""
        namespace, name = str(kwargs["namespace"]), str(kwargs["name"])
        return {(namespace, kind, value): name for kind, value in tracked_keys(kwargs["body"])}

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def model_deployment_event(**kwargs: Any) -> None:
        key = (str(kwargs["namespace"]), str(kwargs["name"]))
        if kwargs.get("type") == "DELETED":
            clocks.forget(key)
            with _locks_guard:
                _written.pop(key, None)
            return
        if is_own_write(key, (kwargs["body"].get("metadata") or {}).get("resourceVersion")):
            return
        _safely(api_factory, clocks, str(kwargs["namespace"]), str(kwargs["name"]), kwargs["logger"], _catalog(kwargs))

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        when=lambda body, **_: is_active(body),
        cancellation_timeout=10.0,
        registry=registry,
    )
    async def model_deployment_clock(stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        """While a rollout is underway: reconcile when its clock falls due (see the module docstring).

        The first look is at once (this process may not have reconciled it yet); then it sleeps
        until the due time its reconciles set, re-reading it at least every CLOCK_SLICE_SECONDS.
        """
        namespace, name, logger = str(kwargs["namespace"]), str(kwargs["name"]), kwargs["logger"]
        key, loop, first, catalog = (namespace, name), asyncio.get_running_loop(), True, _catalog(kwargs)
        while not stopped:
            due, now = clocks.due(key), _utcnow()
            if (first and due is None) or (due is not None and due <= now):
                # in kopf's context (its Event poster and settings live in context variables)
                context = contextvars.copy_context()
                recheck = due is not None and clocks.is_recheck(key)
                args = (api_factory, clocks, namespace, name, logger, catalog, recheck)
                await loop.run_in_executor(clock_threads, context.run, _safely, *args)
            else:
                left = CLOCK_SLICE_SECONDS if due is None else (due - now).total_seconds() + CLOCK_MARGIN_SECONDS
                await stopped.wait(min(CLOCK_SLICE_SECONDS, left))
            first = False

    @kopf.on.event("apps", "v1", "deployments", labels={"modelops.dev/deployment": kopf.PRESENT}, registry=registry)
    def model_server_event(**kwargs: Any) -> None:
        owner = _owner_name(kwargs["body"])
        key = (str(kwargs["namespace"]), str(kwargs["name"]))
        if kwargs.get("type") == "DELETED":
            with _locks_guard:
                _children_written.pop(key, None)
        elif is_own_child_write(key, (kwargs["body"].get("metadata") or {}).get("resourceVersion")):
            return
        if owner is not None:
            _safely(api_factory, clocks, str(kwargs["namespace"]), owner, kwargs["logger"], _catalog(kwargs))

    @kopf.on.event(GROUP, VERSION, "modelversions", registry=registry)
    def model_version_event(**kwargs: Any) -> None:
        """Registry-driven delivery: a version becoming eligible reaches its deployments at once.

        Only a change the version selection reads (phase, stage, approval ...) reaches them: not
        the ``status.deployments`` a reconcile writes, nor a version first seen in the listing at
        start-up (each deployment is reconciled by its own listing)."""
        namespace, name, body = str(kwargs["namespace"]), str(kwargs["name"]), kwargs["body"]
        info = None if kwargs.get("type") == "DELETED" else VersionInfo.from_object(body)
        with seen_guard:
            previous = seen_versions.pop((namespace, name), None)
            if info is not None:
                seen_versions[(namespace, name)] = info
        first_listed = previous is None and kwargs.get("type") is None
        if info is not None and (info == previous or first_listed):
            return
        for md in sorted(_tracking(kwargs[TRACKING_INDEX], namespace, body)):
            _safely(api_factory, clocks, namespace, md, kwargs["logger"], _catalog(kwargs))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    def model_deployment_deleted(**kwargs: Any) -> None:
        namespace, name = str(kwargs["namespace"]), str(kwargs["name"])
        clocks.forget((namespace, name))
        forget_rollout_metrics(namespace, name)
        forget_analysis_measurements(namespace, name)
        try:
            body = dict(kwargs["body"])
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
            api = api_factory()
            sync_model_versions(api, owner_of(body), None, observe(api, body, spec, _catalog(kwargs)))
        except Exception as exc:  # best effort: children are garbage-collected
            kwargs["logger"].info("could not clear ModelVersion deployments of %s: %s", name, exc)


__all__ = [
    "Clocks",
    "Reconciled",
    "Slots",
    "is_active",
    "reconcile",
    "register",
    "registry_after_rollback",
    "tracked_keys",
]
