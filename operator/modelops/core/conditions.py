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
