"""metav1.Condition bookkeeping: pure, with the clock passed in.

A condition's ``lastTransitionTime`` moves only when its status flips, as kstatus and
``kubectl wait --for=condition`` expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelops.api.base import Condition, ConditionStatus


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """Return the list with ``type_`` set; other conditions keep their order."""
    old = get_condition(conditions, type_)
    transition = now if old is None or old.status != status else old.last_transition_time or now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PROGRESSING_REASON = "Progressing"
"""The reason of ``Reconciling=True`` on every kind (Flux's convention; the message says what is underway)."""


def kstatus_conditions(
    conditions: Sequence[Condition],
    *,
    stalled: tuple[str, str] | None,
    reconciling: str | None,
    idle_reason: str,
    now: datetime,
    observed_generation: int | None,
) -> list[Condition]:
    """``Stalled`` and ``Reconciling`` as kstatus (sigs.k8s.io/cli-utils) reads them.

    ``stalled`` is ``(reason, message)`` of a terminal error that needs a person; ``reconciling``
    the message of work still underway. Stalled wins: the two are never True together. Both are
    always written (False with ``idle_reason`` when nothing applies), so ``kubectl wait`` and
    ``kubectl get -o wide`` always find them.
    """
    gen = observed_generation
    if stalled is not None:
        conds = set_condition(conditions, RECONCILING, "False", stalled[0], "", now, gen)
        return set_condition(conds, STALLED, "True", stalled[0], stalled[1], now, gen)
    if reconciling is not None:
        conds = set_condition(conditions, RECONCILING, "True", PROGRESSING_REASON, reconciling, now, gen)
    else:
        conds = set_condition(conditions, RECONCILING, "False", idle_reason, "", now, gen)
    return set_condition(conds, STALLED, "False", idle_reason, "", now, gen)
