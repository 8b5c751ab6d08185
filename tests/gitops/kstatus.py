"""A small Python port of kstatus (sigs.k8s.io/cli-utils ``pkg/kstatus/status``): the test oracle
for "does a GitOps tool understand our status?".

It follows ``status.Compute`` for a custom resource, the only path our kinds take:

1. ``metadata.deletionTimestamp`` set: **Terminating** (``checkGenericProperties``).
2. ``metadata.generation`` and ``status.observedGeneration`` both present and different:
   **InProgress**, reason ``LatestGenerationNotObserved`` (``checkGeneration``; an
   observedGeneration given as a string is parsed, as upstream does).
3. The conditions in list order: the first ``Reconciling=True`` is **InProgress**, the first
   ``Stalled=True`` is **Failed** (``checkGenericProperties``).
4. No type-specific rule exists for our group (``GetLegacyConditionsFn`` knows core kinds only).
5. The ``Ready`` condition (``checkReadyCondition``): True is **Current**, False or Unknown is
   **InProgress** with its reason.
6. Otherwise **Current** ("Resource is current"): also an object without any status, which is
   kstatus's documented blind spot for a resource seen before its controller wrote status.

Flux (kustomize-controller's ``wait``/``healthChecks``, helm-controller) and Helm 4's ``--wait``
compute resource status with this library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["InProgress", "Failed", "Current", "Terminating"]


@dataclass(frozen=True)
class Result:
    status: Status
    message: str = ""
    reason: str = ""
    """The reason of the condition kstatus would add (Reconciling or Stalled), if any."""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            return None
    return None


def compute(obj: Mapping[str, Any]) -> Result:
    """The kstatus status of one custom resource."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return Result("Terminating", "Resource scheduled for deletion")
    generation = _int(meta.get("generation"))
    if generation is not None and "observedGeneration" in status:
        observed = _int(status.get("observedGeneration"))
        if observed != generation:
            message = f"{obj.get('kind')} generation is {generation}, but latest observed generation is {observed}"
            return Result("InProgress", message, "LatestGenerationNotObserved")
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    for c in conditions:
        if c.get("type") == "Reconciling" and c.get("status") == "True":
            return Result("InProgress", str(c.get("message") or ""), str(c.get("reason") or ""))
        if c.get("type") == "Stalled" and c.get("status") == "True":
            return Result("Failed", str(c.get("message") or ""), str(c.get("reason") or ""))
    for c in conditions:
        if c.get("type") != "Ready":
            continue
        if c.get("status") == "True":
            return Result("Current", "Resource is Ready")
        if c.get("status") in ("False", "Unknown"):
            return Result("InProgress", str(c.get("message") or ""), str(c.get("reason") or ""))
    return Result("Current", "Resource is current")
