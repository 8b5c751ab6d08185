"""The KS p-value without scipy.stats equals scipy.stats' (within 1e-9), regime by regime.

modelops.drift.ks_distribution computes what ``scipy.stats.ks_2samp(method="auto")`` reports
without importing scipy.stats: the exact lattice-path probability (n1 = n2 in closed form, the
band recursion otherwise: scipy's compiled routine loaded by file, or numpy's anti-diagonals),
and ``kstwo.sf`` region by region in the asymptotic regime.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.stats._stats_py import _attempt_exact_2kssamp

from modelops.drift import ks_distribution as kd
from modelops.drift import stattests as st

TOL = 1e-9


def _scipy_exact(n1: int, n2: int, h: int) -> float | None:
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    ok, _d, p = _attempt_exact_2kssamp(n1, n2, g, np.float64(h / lcm), "two-sided")
    return float(p) if ok else None


def test_the_exact_band_equals_scipy_on_many_sizes_and_distances() -> None:
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(400):
        n1, n2 = (int(v) for v in rng.integers(1, 120, size=2))
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = int(rng.integers(1, lcm + 1))
        expected = _scipy_exact(n1, n2, h)
        if expected is None:
            continue
        d, p = kd.two_sample_pvalue(h / lcm, n1, n2)
        assert d == h / lcm
        assert abs(p - expected) <= TOL, (n1, n2, h)
        if n1 != n2:  # the numpy recursion (used when scipy's compiled one will not load) too
            assert abs(kd._outside_band(n1, n2, g, h) - expected) <= 1e-15, (n1, n2, h)
        checked += 1
    assert checked > 350


@pytest.mark.parametrize(("n1", "n2"), [(2_000, 1_999), (700, 1_000), (1_000, 3_000), (10_000, 7)])
def test_the_numpy_band_recursion_equals_scipy_at_larger_sizes(n1: int, n2: int) -> None:
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    for d in (0.01, 0.04, 0.1, 0.3):
        h = round(d * lcm)
        expected = _scipy_exact(n1, n2, h)
        assert expected is not None
        assert abs(kd._outside_band(n1, n2, g, h) - expected) <= 1e-15


def test_equal_sizes_closed_form_equals_scipy_and_falls_back_where_scipy_does() -> None:
    """For n1 = n2 the alternating sum can land a hair above 1 for tiny D; scipy then answers
    with the asymptotic distribution, and so must we (same rounding, same verdict)."""
    from scipy.stats._stats_py import _compute_prob_outside_square

    branches = {"exact": 0, "asymptotic": 0}
    for n in (1, 2, 7, 100, 2_500, 10_000):
        for h in sorted({1, 2, 3, max(1, n // 50), max(1, n // 7), max(1, n // 2), n}):
            if h > n:
                continue
            assert kd._outside_square(n, h) == _compute_prob_outside_square(n, h)
            exact = _scipy_exact(n, n, h)
            if exact is None:
                expected = float(np.clip(stats.kstwo.sf(h / n, np.round(n * n / (2.0 * n))), 0, 1))
                branches["asymptotic"] += 1
            else:
                expected = exact
                branches["exact"] += 1
            _d, p = kd.two_sample_pvalue(h / n, n, n)
            assert abs(p - expected) <= TOL, (n, h)
    assert min(branches.values()) >= 3


def test_scipys_compiled_band_loads_here() -> None:
    """CI runs the fast route (scipy's routine by file); the numpy route is tested above."""
    assert kd._compiled_band() is not None


def _region(n: int, x: float) -> str:
    t = n * x
    if x <= 0.5 / n or x >= 1.0:
        return "outside the support"
    if t <= 1.0:
        return "Ruben-Gambino low"
    if t >= n - 1:
        return "Ruben-Gambino high"
    if x >= 0.5:
        return "Smirnov, x >= 1/2"
    nx2 = t * x
    if n <= 140:
        return "Durbin, n <= 140" if nx2 <= 4 else "Smirnov, n <= 140"
    if nx2 >= 370:
        return "zero"
    if nx2 >= 2.2:
        return "Smirnov tail"
    return "Durbin" if n <= 100_000 and n * x**1.5 <= 1.4 else "Pelz-Good"


def test_kolmogorov_sf_equals_scipy_kstwo_in_every_region() -> None:
    sizes = [1, 2, 3, 5, 10, 37, 100, 140, 141, 500, 5_000, 50_000, 100_000, 100_001, 400_000, 3_000_000]
    regions: dict[str, int] = {}
    for n in sizes:
        points = [0.4 / n, 0.5 / n, 0.75 / n, 1.5 / n, (n - 0.5) / n, 0.5, 0.7, 0.999, 1.0]
        zs = [0.03, 0.3, 0.6, 0.8, 0.87, 1.0, 1.2, 1.4, 19.5]
        if n <= 5_000:  # the Smirnov tail (scipy.special.smirnov takes seconds at larger n, both sides)
            zs += [1.5, 2.0, 3.0, 5.0]
        points += [z / math.sqrt(n) for z in zs]
        for x in points:
            if not 0.0 < x <= 1.0:
                continue
            expected = float(stats.kstwo.sf(x, n))
            got = kd.kolmogorov_sf(x, n)
            assert abs(got - expected) <= TOL, (n, x, got, expected)
            regions[_region(n, x)] = regions.get(_region(n, x), 0) + 1
    assert set(regions) == {
        "outside the support",
        "Ruben-Gambino low",
        "Ruben-Gambino high",
        "Smirnov, x >= 1/2",
        "Durbin, n <= 140",
        "Smirnov, n <= 140",
        "zero",
        "Smirnov tail",
        "Durbin",
        "Pelz-Good",
    }


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (10_000, 10_000, 0.03),  # the largest exact case, equal sizes
        (10_000, 9_999, 0.03),  # exact, unequal
        (10_001, 10_000, 0.03),  # one row past the limit: asymptotic
        (10_000, 10_001, 0.0),
        (500, 20_000, 0.1),  # a small reference against a large current sample
        (120, 30_000, 0.2),  # n1 n2 / (n1 + n2) <= 140
        (3, 50_000, 1.0),
        (250_000, 210_000, 0.005),  # n > 100,000: Pelz-Good
    ],
)
def test_ks_2samp_matches_scipy_across_the_exact_asymptotic_switch(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 * 7 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(size=n2) + shift
    d, p = st.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert abs(d - expected.statistic) <= TOL
    assert abs(p - expected.pvalue) <= TOL


def test_chi2_sf_equals_scipy() -> None:
    for df in (1, 2, 3, 9, 19, 150):
        for stat in (0.0, 1e-8, 0.5, 3.0, df, 2.0 * df + 7, 400.0):
            assert abs(st.chi2_sf(stat, df) - float(stats.chi2.sf(stat, df))) <= 1e-12


def test_benjamini_hochberg_equals_scipy() -> None:
    from modelops.drift.engine import benjamini_hochberg

    rng = np.random.default_rng(5)
    for size in (1, 2, 7, 50):
        p = rng.uniform(0, 1, size) ** 3
        p[: size // 3] = p[0]  # ties
        assert np.abs(benjamini_hochberg(p) - stats.false_discovery_control(p, method="bh")).max() <= 1e-15


def test_the_tests_import_no_scipy_stats() -> None:
    """KS (both regimes, the Smirnov tail included), chi2 and JS in a fresh process: scipy.stats
    never loads; scipy.special does for the chi2 and Smirnov tails; distances need no scipy."""
    code = """
import sys
import numpy as np
from modelops.drift import stattests as st
rng = np.random.default_rng(0)
st.wasserstein(rng.normal(size=300), rng.normal(size=400))
st.jensenshannon_from_counts([5, 6, 7], [7, 6, 5])
distances = sorted(m for m in sys.modules if m.startswith("scipy"))
st.ks_2samp(rng.normal(size=300), rng.normal(size=400) + 0.2)  # exact, unequal sizes
st.ks_2samp(rng.normal(size=300), rng.normal(size=300))  # exact, equal sizes
st.ks_2samp(rng.normal(size=20_000), rng.normal(size=30_000) + 0.5)  # asymptotic, Smirnov tail
st.chi2_from_counts([10, 20, 30], [30, 20, 10])
print(distances, "scipy.stats" in sys.modules, "scipy.special" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False", "True"]
