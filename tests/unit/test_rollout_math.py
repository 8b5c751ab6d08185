"""Replica math of the canary (tables in the style of Argo Rollouts' canary_test.go) and its
invariants under hypothesis: the budget holds, ready capacity never drops, moves converge."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops.api.modeldeployment import resolve_int_or_percent
from modelops.core.rollout_math import (
    Scale,
    canary_replicas,
    handover_scale,
    handover_weight,
    next_scale,
    stable_target,
    surge_pods,
)


@pytest.mark.parametrize(
    ("weight", "replicas", "expected"),
    [
        (0, 4, 0),
        (1, 4, 1),
        (10, 10, 1),
        (20, 5, 1),
        (25, 4, 1),
        (26, 4, 2),
        (50, 3, 2),
        (99, 10, 10),
        (100, 7, 7),
        (30, 0, 0),
    ],
)
def test_canary_replicas_round_up(weight, replicas, expected):
    assert canary_replicas(weight, replicas) == expected


@pytest.mark.parametrize(
    ("setting", "replicas", "expected"),
    [("25%", 4, 1), ("25%", 5, 2), ("25%", 1, 1), ("0%", 10, 1), (0, 10, 1), (3, 10, 3), ("100%", 6, 6), ("10%", 0, 1)],
)
def test_surge_is_a_count_or_percent_rounded_up_and_at_least_one(setting, replicas, expected):
    assert surge_pods(setting, replicas) == expected


def test_resolve_int_or_percent():
    assert resolve_int_or_percent("50%", 3) == 2
    assert resolve_int_or_percent(2, 100) == 2


@pytest.mark.parametrize(
    ("weight", "replicas", "surge", "mode", "expected"),
    [
        (25, 4, 1, "replicas", 3),
        (50, 4, 1, "replicas", 2),
        (100, 4, 1, "replicas", 0),
        (25, 4, 1, "gatewayApi", 4),
        (50, 4, 1, "gatewayApi", 3),
        (100, 4, 1, "gatewayApi", 1),
        (50, 4, 4, "gatewayApi", 4),
    ],
)
def test_stable_target(weight, replicas, surge, mode, expected):
    assert stable_target(weight, replicas, surge, mode) == expected


# One move from (stable, canary) with the canary's ready pods: the canary grows into the budget,
# the stable shrinks only by ready canary pods.
@pytest.mark.parametrize(
    ("weight", "current", "ready", "expected"),
    [
        (25, Scale(4, 0), 0, Scale(4, 1)),  # canary into the 1-pod budget, stable stays
        (25, Scale(4, 1), 0, Scale(4, 1)),  # not ready: nothing moves
        (25, Scale(4, 1), 1, Scale(3, 1)),  # ready: stable gives one up
        (50, Scale(3, 1), 1, Scale(3, 2)),
        (50, Scale(3, 2), 2, Scale(2, 2)),
        (100, Scale(2, 2), 2, Scale(2, 3)),
        (100, Scale(2, 3), 3, Scale(1, 3)),
        (100, Scale(1, 3), 3, Scale(1, 4)),
        (100, Scale(1, 4), 4, Scale(0, 4)),
        (0, Scale(2, 2), 2, Scale(4, 0)),  # weight back to 0 (abort): canary gone, stable back to full
    ],
)
def test_next_scale_replica_routing(weight, current, ready, expected):
    assert next_scale(weight, 4, 1, "replicas", current, ready) == expected


def test_next_scale_gateway_keeps_the_stable_as_full_as_the_budget_allows():
    assert next_scale(50, 4, 4, "gatewayApi", Scale(4, 0), 0) == Scale(4, 2)
    assert next_scale(50, 4, 1, "gatewayApi", Scale(4, 0), 0) == Scale(4, 1)
    assert next_scale(50, 4, 1, "gatewayApi", Scale(4, 1), 1) == Scale(3, 1)
    assert next_scale(50, 4, 1, "gatewayApi", Scale(3, 1), 1) == Scale(3, 2)


@pytest.mark.parametrize(
    ("current", "stable_ready", "expected"),
    [
        (Scale(0, 4), 0, Scale(1, 4)),
        (Scale(1, 4), 1, Scale(1, 3)),
        (Scale(1, 3), 1, Scale(2, 3)),
        (Scale(2, 3), 2, Scale(2, 2)),
        (Scale(4, 1), 4, Scale(4, 0)),
    ],
)
def test_handover_scale(current, stable_ready, expected):
    assert handover_scale(4, 1, current, stable_ready) == expected


@pytest.mark.parametrize(("ready", "expected"), [(0, 100), (1, 75), (3, 25), (4, 0), (9, 0)])
def test_handover_weight_is_what_the_stable_cannot_take_yet(ready, expected):
    assert handover_weight(4, ready) == expected


def _walk(weight, replicas, surge, mode, start):
    """Apply moves with every desired pod becoming ready; return the states visited."""
    seen, current = [start], start
    for _ in range(4 * (replicas + surge) + 4):
        nxt = next_scale(weight, replicas, surge, mode, current, current.canary)
        if nxt == current:
            break
        seen.append(nxt)
        current = nxt
    return seen


@settings(max_examples=300, deadline=None)
@given(
    replicas=st.integers(0, 30),
    surge_setting=st.one_of(st.integers(0, 10), st.sampled_from(["0%", "10%", "25%", "50%", "100%"])),
    weights=st.lists(st.integers(0, 100), min_size=1, max_size=6).map(sorted),
    mode=st.sampled_from(["replicas", "gatewayApi"]),
)
def test_budget_capacity_and_convergence(replicas, surge_setting, weights, mode):
    surge = surge_pods(surge_setting, replicas)
    current = Scale(replicas, 0)
    for weight in weights:
        states = _walk(weight, replicas, surge, mode, current)
        for before, after in itertools.pairwise(states):
            assert after.total <= replicas + surge  # the budget
            # ready capacity (all pods of `before` ready) never below replicas after the move
            assert min(after.stable, before.stable) + min(after.canary, before.canary) >= min(replicas, before.total)
        current = states[-1]
        assert current.canary == canary_replicas(weight, replicas)
        assert current.stable == stable_target(weight, replicas, surge, mode)


@settings(max_examples=200, deadline=None)
@given(replicas=st.integers(0, 30), surge_setting=st.sampled_from([1, 2, "25%", "100%"]))
def test_handover_converges_within_budget(replicas, surge_setting):
    surge = surge_pods(surge_setting, replicas)
    current = Scale(0, replicas)
    for _ in range(4 * replicas + 4):
        nxt = handover_scale(replicas, surge, current, current.stable)
        assert nxt.total <= replicas + surge
        assert min(nxt.stable, current.stable) + min(nxt.canary, current.canary) >= min(replicas, current.total)
        if nxt == current:
            break
        current = nxt
    assert current == Scale(replicas, 0)
