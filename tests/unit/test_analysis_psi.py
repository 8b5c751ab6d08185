"""PSI between two Prometheus histograms: the drift package's PSI, read from cumulative le buckets."""

from __future__ import annotations

import math
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops.core.analysis import psi_from_buckets
from modelops.drift.stattests import psi_from_counts

BOUNDS = (0.0, 0.05, 0.5, 1.0, math.inf)


def cumulative(counts: list[float], bounds: tuple[float, ...] = BOUNDS) -> list[tuple[float, float]]:
    return list(zip(bounds, accumulate(counts), strict=True))


counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=len(BOUNDS), max_size=len(BOUNDS)).filter(
    lambda c: sum(c) > 0
)


@settings(max_examples=150, deadline=None)
@given(stable=counts, canary=counts)
def test_equals_the_drift_package_on_the_same_bins(stable: list[int], canary: list[int]) -> None:
    expected = psi_from_counts(stable, canary)
    assert psi_from_buckets(cumulative(stable), cumulative(canary)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(stable=counts, canary=counts)
def test_is_never_negative(stable: list[int], canary: list[int]) -> None:
    assert psi_from_buckets(cumulative(stable), cumulative(canary)) >= 0.0


@settings(max_examples=200, deadline=None)
@given(histogram=counts, scale=st.integers(min_value=1, max_value=50))
def test_is_zero_for_identical_distributions(histogram: list[int], scale: int) -> None:
    # The same shape at any traffic volume: canary replicas see a fraction of the requests.
    h = cumulative(histogram)
    assert psi_from_buckets(h, h) == 0.0
    assert psi_from_buckets(h, cumulative([c * scale for c in histogram])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        # half 0 / half 1 against all 1 (a constant model): 0.5*ln(0.5/1e-4)... by hand
        ([50, 0, 0, 50, 0], [0, 0, 0, 100, 0], (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(1 / 0.5)),
        ([25, 25, 25, 25, 0], [25, 25, 25, 25, 0], 0.0),
        ([10, 0, 0, 0, 0], [0, 0, 0, 0, 10], 2 * (1 - 1e-4) * math.log(1 / 1e-4)),
    ],
)
def test_known_values(stable: list[int], canary: list[int], expected: float) -> None:
    assert psi_from_buckets(cumulative(stable), cumulative(canary)) == pytest.approx(expected, rel=1e-12)


def test_bucket_order_and_the_inf_spelling_do_not_matter() -> None:
    stable = cumulative([5, 5, 5, 5, 5])
    canary = cumulative([1, 2, 3, 4, 15])
    expected = psi_from_counts([5, 5, 5, 5, 5], [1, 2, 3, 4, 15])
    assert psi_from_buckets(list(reversed(stable)), canary) == pytest.approx(expected)
    assert psi_from_buckets(
        stable, [(float("+Inf") if le == math.inf else le, c) for le, c in canary]
    ) == pytest.approx(expected)


def test_different_layouts_compare_on_their_common_bounds() -> None:
    # The canary server was started with coarser --prediction-buckets (0.5, 1, +Inf).
    stable = cumulative([10, 20, 30, 40, 0])  # le 0, 0.05, 0.5, 1, +Inf
    canary = [(0.5, 30.0), (1.0, 90.0), (math.inf, 90.0)]
    # common bounds 0.5, 1, +Inf: stable 60 / 40 / 0, canary 30 / 60 / 0
    assert psi_from_buckets(stable, canary) == pytest.approx(psi_from_counts([60, 40, 0], [30, 60, 0]))


def test_extrapolated_counts_that_dip_count_as_zero() -> None:
    # increase() extrapolates each bucket on its own: a cumulative count may fall by a hair.
    stable = [(0.0, 10.2), (1.0, 10.1), (math.inf, 20.0)]
    canary = [(0.0, 10.0), (1.0, 10.0), (math.inf, 20.0)]
    assert psi_from_buckets(stable, canary) == pytest.approx(psi_from_counts([10.2, 0, 9.8], [10, 0, 10]))


def test_empty_histograms_have_no_psi() -> None:
    empty = cumulative([0, 0, 0, 0, 0])
    assert math.isnan(psi_from_buckets(empty, cumulative([1, 0, 0, 0, 0])))
    assert math.isnan(psi_from_buckets(cumulative([1, 0, 0, 0, 0]), empty))


def test_epsilon_is_the_drift_packages() -> None:
    stable, canary = [100, 0, 0, 0, 0], [50, 50, 0, 0, 0]
    for epsilon in (1e-4, 1e-6):
        assert psi_from_buckets(cumulative(stable), cumulative(canary), epsilon) == pytest.approx(
            psi_from_counts(stable, canary, epsilon)
        )


def test_histograms_need_a_common_inf_bucket() -> None:
    with pytest.raises(ValueError, match=r"\+Inf"):
        psi_from_buckets([(0.5, 1.0), (1.0, 2.0)], [(0.5, 1.0), (1.0, 2.0)])
