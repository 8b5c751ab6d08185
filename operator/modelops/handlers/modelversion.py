"""ModelVersion handlers: parse -> observe -> decide (core.registry) -> apply -> status and Events."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import kopf
from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Stage
from modelops.artifact_verifier import Verifier
from modelops.core.conditions import kstatus_conditions, set_condition
from modelops.core.registry import Decision, Demotion, DigestObservation, EventSpec, decide, needs_digest_check
from modelops.k8s import events
from modelops.k8s.observe import observe_digest, observe_model_version
from modelops.k8s.resources import MODEL_VERSION, Conflict, CustomObjects
from modelops.telemetry import forget_model_version, observe_reconcile, set_model_version_info

KIND = "ModelVersion"
SIBLINGS_INDEX = "model_version_siblings"


def invalid_spec_status(
    status: dict[str, Any], exc: ValidationError, generation: int, now: dt.datetime
) -> tuple[dict[str, Any], str]:
    """Status for a spec the API server accepted but we cannot parse: name the field, do not crash."""
    message = describe_spec_error(exc)
    current = ModelVersionStatus.model_validate(status or {})
    conds = set_condition(current.conditions, "Ready", "False", "InvalidSpec", message, now, generation)
    conds = kstatus_conditions(
        conds,
        stalled=("InvalidSpec", message),
        reconciling=None,
        idle_reason="InvalidSpec",
        now=now,
        observed_generation=generation,
    )
    new = current.model_copy(update={"conditions": conds, "observed_generation": generation, "message": message})
    return new.to_wire(), message


def apply_stage_changes(
    api: CustomObjects,
    namespace: str,
    changes: Sequence[Demotion],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Move other versions to their new stage, in order: the status (the grant, with its history
    entry), then ``spec.stage`` so that the request matches it, each guarded by the
    resourceVersion it was decided from (a :class:`Conflict` propagates), then the Event."""
    for change in changes:
        written = api.patch_status(
            MODEL_VERSION, namespace, change.name, change.status.to_wire(), change.resource_version
        )
        api.patch(
            MODEL_VERSION,
            namespace,
            change.name,
            {
                "metadata": {"resourceVersion": written["metadata"]["resourceVersion"]},
                "spec": {"stage": str(change.stage)},
            },
        )
        events.record(written, [change.event])
        logger.info("%s: stage %s (%s)", change.name, change.stage, change.event.reason)


def apply_decision(
    api: CustomObjects,
    namespace: str,
    body: dict[str, Any],
    decision: Decision,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Archive superseded siblings first, then write our own status.

    Every write carries the resourceVersion the decision was made from, so a decision based on a
    stale read is retried on fresh state instead of overwriting someone else's update. A crash
    between the writes is re-decided safely: the siblings are already archived.
    """
    try:
        apply_stage_changes(api, namespace, decision.demotions, logger)
        resource_version = str(body["metadata"].get("resourceVersion") or "") or None
        if decision.changed:
            written = api.patch_status(
                MODEL_VERSION, namespace, body["metadata"]["name"], decision.status.to_wire(), resource_version
            )
            resource_version = str(written["metadata"].get("resourceVersion") or "") or None
        if decision.request_stage is not None:  # an automatic promotion: the request follows the grant
            request: dict[str, Any] = {"spec": {"stage": str(decision.request_stage)}}
            if resource_version:
                request["metadata"] = {"resourceVersion": resource_version}
            api.patch(MODEL_VERSION, namespace, body["metadata"]["name"], request)
            logger.info("%s: spec.stage set to %s by its ModelPolicy", body["metadata"]["name"], decision.request_stage)
    except Conflict as exc:
        raise kopf.TemporaryError(f"changed while reconciling, retrying on fresh state: {exc}", delay=0.5) from exc
    events.record(body, decision.events)


def reconcile(
    api: CustomObjects,
    body: dict[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
    now: dt.datetime,
    digest: DigestObservation | None = None,
    sibling_names: Collection[str] | None = None,
) -> None:
    """Everything but reading the artifact (blocking API calls: run in a thread). ``digest`` is the
    artifact check's outcome when one was made (None: a Pending version stays Pending);
    ``sibling_names``: the model's versions as the watch knows them, read fresh when the decision
    needs them (None: the namespace is listed)."""
    meta = body["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], int(meta.get("generation", 1))
    with observe_reconcile(KIND) as outcome:
        try:
            spec = ModelVersionSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            outcome.result = "invalid"
            wire, message = invalid_spec_status(body.get("status") or {}, exc, generation, now)
            api.patch_status(MODEL_VERSION, namespace, name, wire)
            events.record(body, [EventSpec("Warning", "InvalidSpec", message)])
            return
        status = ModelVersionStatus.model_validate(body.get("status") or {})
        observations = observe_model_version(api, namespace, name, spec, status, digest, sibling_names)
        decision = decide(name, generation, spec, status, observations, now)
        apply_decision(api, namespace, body, decision, logger)
        new = decision.status
        set_model_version_info(
            namespace, name, spec.model_name, spec.version, str(new.stage or Stage.NONE), str(new.phase)
        )
        if decision.retry_after_seconds is not None:
            outcome.result = "retry"
            raise kopf.TemporaryError(new.message or "artifact unreachable", delay=decision.retry_after_seconds)


async def reconcile_async(
    api: CustomObjects,
    body: dict[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
    verifier: Verifier,
    siblings: Mapping[Any, Any] | None = None,
) -> None:
    """Read the artifact on the event loop (a slow store holds no handler worker), then the rest in
    a thread. ``siblings``: the index of version names by (namespace, model)."""
    digest = None
    try:
        spec = ModelVersionSpec.model_validate(body.get("spec") or {})
        status = ModelVersionStatus.model_validate(body.get("status") or {})
    except ValidationError:
        pass  # reconcile() reports it
    else:
        if needs_digest_check(status):
            digest = await observe_digest(verifier, body["metadata"]["namespace"], spec)
    names = None
    if siblings is not None:
        key = (body["metadata"]["namespace"], str((body.get("spec") or {}).get("modelName", "")))
        names = set(siblings.get(key, ()))
    await asyncio.to_thread(reconcile, api, body, logger, dt.datetime.now(dt.UTC), digest, names)


def register(registry: kopf.OperatorRegistry, api_factory: Any, verifier: Verifier) -> None:
    """Register the ModelVersion handlers on ``registry``; ``api_factory()`` returns a CustomObjects,
    ``verifier`` reads artifacts (the operator's artifact policy, timeouts and fetch slots)."""

    @kopf.index("modelops.dev", "v1alpha1", "modelversions", id=SIBLINGS_INDEX, registry=registry)
    def model_version_siblings(**kwargs: Any) -> dict[tuple[str, str], str]:
        """Version names by (namespace, model): a promotion reads its own model's versions (fresh),
        not every version of the namespace. A version is indexed before any handler sees it."""
        model = str((kwargs["body"].get("spec") or {}).get("modelName", ""))
        return {(str(kwargs["namespace"]), model): str(kwargs["name"])}

    @kopf.on.resume("modelops.dev", "v1alpha1", "modelversions", registry=registry)
    @kopf.on.create("modelops.dev", "v1alpha1", "modelversions", registry=registry)
    @kopf.on.update("modelops.dev", "v1alpha1", "modelversions", field="spec", registry=registry)
    async def model_version(**kwargs: Any) -> None:
        await reconcile_async(api_factory(), dict(kwargs["body"]), kwargs["logger"], verifier, kwargs[SIBLINGS_INDEX])

    @kopf.on.delete("modelops.dev", "v1alpha1", "modelversions", registry=registry, optional=True)
    def model_version_deleted(**kwargs: Any) -> None:
        forget_model_version(str(kwargs["namespace"]), str(kwargs["name"]))


__all__ = ["apply_stage_changes", "reconcile", "register"]
