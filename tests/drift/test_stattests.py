"""Each test's numbers against scipy, on random and adversarial samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelops.drift import stattests as st

# Few distinct values (ties), a few specials, sometimes NaN: the adversarial cases.
_values = hst.one_of(
    hst.sampled_from([0.0, 1.0, -1.0, 2.5, 1e-300, -0.0, math.nan]),
    hst.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    hst.integers(min_value=-3, max_value=3).map(float),
)
samples = hnp.arrays(np.float64, hst.integers(min_value=1, max_value=60), elements=_values)
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _clean(a: np.ndarray) -> np.ndarray:
    return a[~np.isnan(a)]


@FAST
@given(samples, samples)
def test_ks_equals_scipy_default_method(a, b):
    ra, rb = _clean(a), _clean(b)
    if ra.size == 0 or rb.size == 0:
        return
    d, p = st.ks_2samp(a, b)
    ref = stats.ks_2samp(ra, rb)
    assert d == pytest.approx(ref.statistic, abs=1e-9)
    assert p == pytest.approx(ref.pvalue, abs=1e-9)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (10_000, 10_000, 0.02),  # the largest exact case
        (10_000, 9_999, 0.05),  # exact, unequal sizes
        (10_001, 500, 0.1),  # just past the exact limit: asymptotic
        (30_000, 20_000, 0.0),
        (3, 50_000, 1.0),
    ],
)
def test_ks_exact_asymptotic_switch_matches_scipy(n1, n2, shift):
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(size=n2) + shift
    d, p = st.ks_2samp(a, b)
    ref = stats.ks_2samp(a, b)
    assert abs(d - ref.statistic) <= 1e-9
    assert abs(p - ref.pvalue) <= 1e-9


def test_ks_constant_and_identical_columns():
    assert st.ks_2samp(np.ones(50), np.ones(70)) == (0.0, 1.0)
    d, p = st.ks_2samp(np.zeros(30), np.ones(30))
    assert d == 1.0
    assert p == pytest.approx(stats.ks_2samp(np.zeros(30), np.ones(30)).pvalue, abs=1e-12)


@FAST
@given(samples, samples)
def test_wasserstein_equals_scipy(a, b):
    ra, rb = _clean(a), _clean(b)
    if ra.size == 0 or rb.size == 0:
        return
    expected = stats.wasserstein_distance(ra, rb)
    scale = max(1.0, float(np.abs(np.concatenate([ra, rb])).max()))
    assert st.wasserstein(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9 * scale)


def test_wasserstein_large_offset_stays_precise():
    rng = np.random.default_rng(7)
    a = 1e6 + rng.normal(size=20_000)
    b = 1e6 + rng.normal(size=15_000) + 0.05
    assert st.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-7)


counts = hnp.arrays(np.int64, hst.integers(min_value=1, max_value=25), elements=hst.integers(0, 1000))


@FAST
@given(counts, hst.data())
def test_chi2_equals_chi2_contingency_without_correction(ref, data):
    cur = data.draw(hnp.arrays(np.int64, ref.size, elements=hst.integers(0, 1000)))
    stat, p = st.chi2_from_counts(ref, cur)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        assert (stat, p) == (0.0, 1.0)  # a single category (or an empty side) cannot drift
        return
    expected = stats.chi2_contingency(table, correction=False)
    assert stat == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_chi2_handles_category_unseen_in_reference():
    stat, p = st.chi2_from_counts([50, 50, 0], [40, 40, 20])
    assert math.isfinite(stat)
    assert p < 1e-3


@FAST
@given(counts, hst.data())
def test_jensenshannon_equals_scipy(ref, data):
    cur = data.draw(hnp.arrays(np.int64, ref.size, elements=hst.integers(0, 1000)))
    got = st.jensenshannon_from_counts(ref, cur)
    if ref.sum() == 0 or cur.sum() == 0:
        assert math.isnan(got)
        return
    assert got == pytest.approx(float(jensenshannon(ref, cur)), abs=1e-9)
    assert 0.0 <= got <= math.sqrt(math.log(2)) + 1e-12


@FAST
@given(counts, hst.data())
def test_psi_formula_and_epsilon(ref, data):
    cur = data.draw(hnp.arrays(np.int64, ref.size, elements=hst.integers(0, 1000)))
    got = st.psi_from_counts(ref, cur)
    if ref.sum() == 0 or cur.sum() == 0:
        assert math.isnan(got)
        return
    p = ref / ref.sum()
    q = cur / cur.sum()
    p = np.where(p == 0, st.PSI_EPSILON, p)
    q = np.where(q == 0, st.PSI_EPSILON, q)
    assert got == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12, abs=1e-12)
    assert got >= -1e-12
    assert st.psi_from_counts(ref, ref) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("ref", "cur", "expected"),
    [
        # By hand. An empty bin's proportion becomes the documented epsilon 1e-4 (Evidently's),
        # the others stay as they are: p = [1, 1e-4], q = [0.5, 0.5]
        #   (0.5 - 1) ln(0.5 / 1) + (0.5 - 1e-4) ln(0.5 / 1e-4) = 0.5 ln 2 + 0.4999 ln 5000
        ([100, 0], [50, 50], 0.5 * math.log(2) + 0.4999 * math.log(5000)),  # 4.604318...
        ([50, 50], [100, 0], 0.5 * math.log(2) + 0.4999 * math.log(5000)),  # symmetric
        # no empty bin: p = [0.5, 0.5], q = [0.25, 0.75] -> 0.25 ln 2 + 0.25 ln 1.5
        ([2, 2], [1, 3], 0.25 * math.log(2) + 0.25 * math.log(1.5)),  # 0.274653...
        ([10, 20, 30], [10, 20, 30], 0.0),
    ],
)
def test_psi_fixed_numbers(ref, cur, expected):
    assert st.psi_from_counts(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_psi_fixed_number_literal():
    assert st.psi_from_counts([100, 0], [50, 50]) == pytest.approx(4.6043184, abs=1e-7)


def test_registry_descriptors():
    assert set(st.REGISTRY) == {"ks", "chi2", "psi", "wasserstein", "jensenshannon"}
    assert {n for n, t in st.REGISTRY.items() if t.score == "p_value"} == {"ks", "chi2"}
    assert st.REGISTRY["ks"].kinds == {"numerical"}
    assert "categorical" in st.REGISTRY["jensenshannon"].kinds
    ks, psi = st.REGISTRY["ks"], st.REGISTRY["psi"]
    assert ks.drifted(0.01, 0.05)
    assert not ks.drifted(0.05, 0.05)
    assert psi.drifted(0.1, 0.1)
    assert not psi.drifted(0.09, 0.1)
    assert not psi.drifted(math.nan, 0.1)
    with pytest.raises(ValueError, match="unknown drift test"):
        st.get_test("anderson")
