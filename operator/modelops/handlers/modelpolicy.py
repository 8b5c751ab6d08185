"""ModelPolicy handlers: describe the policy in its status, and re-evaluate the model's pending requests.

The gates themselves are evaluated by the ModelVersion reconcile (:mod:`modelops.core.registry`),
which reads the model's policies whenever a stage decision is due. A policy that is created,
changed or deleted re-runs that reconcile for every Verified version of the model whose requested
stage is not granted yet, so a relaxed gate (or a waived approval) takes effect at once and a
tightened one shows its new refusal; granted stages are never taken back by a policy change.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from modelops import GROUP, VERSION
from modelops.api.base import ConditionStatus, describe_spec_error
from modelops.api.modelpolicy import ModelPolicySpec, ModelPolicyStatus
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus
from modelops.core.conditions import set_condition
from modelops.core.registry import EventSpec, awaits_policy
from modelops.core.validation_gates import describe
from modelops.handlers import modelversion
from modelops.k8s import events
from modelops.k8s.resources import MODEL_POLICY, MODEL_VERSION, Conflict, CustomObjects, NotFound
from modelops.telemetry import observe_reconcile

KIND = "ModelPolicy"
PLURAL = "modelpolicies"
ACTIVE = "Active"
ATTEMPTS = 3
Logger = logging.Logger | logging.LoggerAdapter[Any]


def pending_versions(api: CustomObjects, namespace: str, model_name: str) -> list[dict[str, Any]]:
    """Verified versions of ``model_name`` whose requested stage waits for a gated decision."""
    pending = []
    for obj in api.list(MODEL_VERSION, namespace):
        raw = obj.get("spec") or {}
        if raw.get("modelName") != model_name:
            continue
        try:
            spec = ModelVersionSpec.model_validate(raw)
        except ValidationError:
            continue  # its own reconcile reports the invalid spec
        if awaits_policy(spec, ModelVersionStatus.model_validate(obj.get("status") or {})):
            pending.append(obj)
    return pending


def _reevaluate_one(api: CustomObjects, namespace: str, obj: dict[str, Any], logger: Logger) -> None:
    """Reconcile one version; a conflicting write (someone else wrote first) is retried on a fresh read."""
    name = obj["metadata"]["name"]
    for attempt in range(ATTEMPTS):
        try:
            modelversion.reconcile(api, obj, logger, dt.datetime.now(dt.UTC))
            return
        except kopf.TemporaryError:
            if attempt == ATTEMPTS - 1:
                raise
            try:
                obj = api.get(MODEL_VERSION, namespace, name)
            except NotFound:
                return


def reevaluate(api: CustomObjects, namespace: str, model_name: str, logger: Logger) -> list[str]:
    """Re-run the stage decision of every pending version of the model; the names re-evaluated."""
    names = []
    for obj in pending_versions(api, namespace, model_name):
        _reevaluate_one(api, namespace, obj, logger)
        names.append(str(obj["metadata"]["name"]))
    return names


def policy_status(
    status: ModelPolicyStatus, spec: ModelPolicySpec | None, error: str, generation: int, now: dt.datetime
) -> ModelPolicyStatus:
    """Ready with the policy in one line, or Stalled naming the field that does not parse. Nothing is
    ever underway for a policy (its effect is on ModelVersions), so Reconciling is always False."""
    ready: ConditionStatus = "False" if spec is None else "True"
    stalled: ConditionStatus = "True" if spec is None else "False"
    if spec is None:
        message = f"invalid, every promotion of the model is refused until it is fixed: {error}"
        reason = "InvalidSpec"
    else:
        message, reason = describe(spec), ACTIVE
    conds = set_condition(status.conditions, "Ready", ready, reason, error or message, now, generation)
    conds = set_condition(conds, "Reconciling", "False", reason, "", now, generation)
    conds = set_condition(conds, "Stalled", stalled, reason, error, now, generation)
    return status.model_copy(update={"conditions": conds, "observed_generation": generation, "message": message})


def reconcile(api: CustomObjects, body: dict[str, Any], logger: Logger, now: dt.datetime) -> None:
    meta = body["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], int(meta.get("generation", 1))
    raw = body.get("spec") or {}
    with observe_reconcile(KIND) as outcome:
        status = ModelPolicyStatus.model_validate(body.get("status") or {})
        spec: ModelPolicySpec | None = None
        error = ""
        try:
            spec = ModelPolicySpec.model_validate(raw)
        except ValidationError as exc:
            outcome.result = "invalid"
            error = describe_spec_error(exc)
        model_name = spec.model_name if spec is not None else str(raw.get("modelName") or "")
        reevaluated = reevaluate(api, namespace, model_name, logger) if model_name else []
        new = policy_status(status, spec, error, generation, now)
        recorded: list[EventSpec] = []
        if status.observed_generation != generation:
            if spec is None:
                recorded.append(EventSpec("Warning", "InvalidSpec", error))
            else:
                detail = f"; re-evaluated {', '.join(reevaluated)}" if reevaluated else ""
                recorded.append(EventSpec("Normal", "PolicyApplied", f"{new.message}{detail}"))
        if new != status:
            try:
                api.patch_status(MODEL_POLICY, namespace, name, new.to_wire(), meta.get("resourceVersion"))
            except Conflict as exc:
                raise kopf.TemporaryError(
                    f"changed while reconciling, retrying on fresh state: {exc}", delay=0.5
                ) from exc
        events.record(body, recorded)
        if reevaluated:
            logger.info("%s: re-evaluated pending versions of model %s: %s", name, model_name, ", ".join(reevaluated))


def register(registry: kopf.OperatorRegistry, api_factory: Any) -> None:
    """Register the ModelPolicy handlers on ``registry``; ``api_factory()`` returns a CustomObjects."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    def model_policy(**kwargs: Any) -> None:
        reconcile(api_factory(), dict(kwargs["body"]), kwargs["logger"], dt.datetime.now(dt.UTC))

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def model_policy_gone(**kwargs: Any) -> None:
        """A deleted policy no longer holds requests back: re-evaluate them (best effort, logged)."""
        if kwargs.get("type") != "DELETED":
            return
        model_name = str((kwargs["body"].get("spec") or {}).get("modelName") or "")
        if not model_name:
            return
        try:
            reevaluate(api_factory(), str(kwargs["namespace"]), model_name, kwargs["logger"])
        except Exception as exc:  # an on.event handler is not retried: say so, the next request re-decides
            kwargs["logger"].warning("re-evaluating model %s after its policy was deleted failed: %s", model_name, exc)


__all__ = ["pending_versions", "reconcile", "reevaluate", "register"]
