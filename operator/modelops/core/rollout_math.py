"""Replica math of a canary rollout, pure (in the spirit of Argo Rollouts' utils/replicaset/canary.go).

Two tracks (stable, canary) share ``replicas`` under a budget of ``surge`` extra pods: the total
of both tracks' desired replicas never exceeds ``replicas + surge``. The canary scales up into the
budget first; the stable scales down only as canary pods become ready, so ready capacity never
drops below ``replicas`` while the shift happens. The promotion hand-over is the mirror image.

Routing modes:
- ``replicas`` (any cluster): one Service over both tracks, traffic follows the ready pods, so the
  stable must shrink to ``replicas - canary`` for the split to equal the weight.
- ``gatewayApi``: exact weights on an HTTPRoute; the stable keeps as many pods as the budget
  allows (all of them with a large enough ``maxSurge``), so an abort finds it at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from modelops.api.modeldeployment import resolve_int_or_percent

RoutingMode = Literal["replicas", "gatewayApi"]


@dataclass(frozen=True)
class Scale:
    """Desired (or observed ``spec.replicas``) pod counts of the two tracks."""

    stable: int
    canary: int

    @property
    def total(self) -> int:
        return self.stable + self.canary


def surge_pods(max_surge: int | str, replicas: int) -> int:
    """The budget in pods: a count or a percent rounded up, and at least 1 so a canary can start
    without first dropping ready capacity."""
    return max(1, resolve_int_or_percent(max_surge, replicas))


def canary_replicas(weight: int, replicas: int) -> int:
    """ceil(weight x replicas / 100): a canary at any positive weight has at least one pod."""
    return math.ceil(weight * replicas / 100)


def stable_target(weight: int, replicas: int, surge: int, mode: RoutingMode) -> int:
    """The stable's size once ``weight`` is reached."""
    canary = canary_replicas(weight, replicas)
    if mode == "replicas":
        return replicas - canary
    return min(replicas, replicas + surge - canary)


def target_scale(weight: int, replicas: int, surge: int, mode: RoutingMode) -> Scale:
    return Scale(stable_target(weight, replicas, surge, mode), canary_replicas(weight, replicas))


def next_scale(weight: int, replicas: int, surge: int, mode: RoutingMode, current: Scale, canary_ready: int) -> Scale:
    """One move towards ``weight`` from ``current``, within the budget, never below ``replicas``
    ready pods: the canary grows into the free budget; the stable shrinks by the ready canary pods."""
    target = target_scale(weight, replicas, surge, mode)
    if target.canary <= current.canary:
        canary = target.canary
    else:
        canary = min(target.canary, max(current.canary, replicas + surge - current.stable))
    stable_floor = max(target.stable, replicas - min(canary_ready, canary))
    stable = min(stable_floor, replicas + surge - canary)
    return Scale(stable, canary)


def handover_scale(replicas: int, surge: int, current: Scale, stable_ready: int) -> Scale:
    """One move of the promotion hand-over (both tracks run the new version): the stable grows
    into the budget, the canary shrinks by the stable's ready pods."""
    stable = min(replicas, max(current.stable, replicas + surge - current.canary))
    canary = min(current.canary, max(0, replicas - min(stable_ready, stable)))
    return Scale(stable, canary)


def handover_weight(replicas: int, stable_ready: int) -> int:
    """HTTPRoute weight of the canary during the hand-over: the share the stable cannot take yet."""
    if replicas <= 0:
        return 0
    return math.ceil(100 * (replicas - min(stable_ready, replicas)) / replicas)
