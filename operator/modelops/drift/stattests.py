"""One pure function per statistical test, and a registry of their descriptors.

The functions take *summaries* (sorted values, cumulative counts, bin counts), never raw frames:
the engine sorts and bins each column once and every test reads the same arrays. Convenience
wrappers on raw arrays (``ks_2samp``, ``wasserstein``, ...) exist for tests and small callers.

Registry style after Evidently's ``stattests/``: a descriptor names the test, the feature kinds it
applies to, whether its score is a p-value (drift when ``p < threshold``) or a distance (drift
when ``score >= threshold``), and its default threshold.

Imports: numpy only. ``scipy.stats`` is never imported (~2 s of CPU, more than a whole check): the
KS distribution is computed in :mod:`modelops.drift.ks_distribution`, and the chi-squared tail
(and KS's one-sided Smirnov tail) come from ``scipy.special``, imported when such a test runs. A
check with the default tests above 1,000 reference rows (Wasserstein, Jensen-Shannon) imports no
scipy at all. Every number still equals scipy's (tests/drift/test_stattests.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from modelops.drift import ks_distribution

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MethodName = Literal["ks", "chi2", "psi", "wasserstein", "jensenshannon"]
FeatureKind = Literal["numerical", "categorical"]
ScoreKind = Literal["p_value", "distance"]

PSI_EPSILON = 1e-4
"""Proportion given to an empty PSI bin so the log ratio stays finite (Evidently's value)."""

WASSERSTEIN_MIN_STD = 1e-3
"""Floor of the reference std that normalises the Wasserstein distance (Evidently's value), so a
constant reference gives a large finite score instead of a division by zero."""

KS_MAX_EXACT_N = ks_distribution.EXACT_MAX_N
"""scipy's ``ks_2samp(method="auto")`` is exact when both samples have at most this many rows."""


@dataclass(frozen=True)
class StatTest:
    """What the engine needs to know about a test, apart from its function."""

    name: MethodName
    display_name: str
    kinds: frozenset[FeatureKind]
    score: ScoreKind
    default_threshold: float

    def drifted(self, score: float, threshold: float) -> bool:
        """p-values drift when small, distances when large."""
        if math.isnan(score):
            return False
        return score < threshold if self.score == "p_value" else score >= threshold


_NUM = frozenset({"numerical"})
_BOTH = frozenset({"numerical", "categorical"})

REGISTRY: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", "Kolmogorov-Smirnov p-value", _NUM, "p_value", 0.05),  # type: ignore[arg-type]
        StatTest("chi2", "chi-square p-value", _BOTH, "p_value", 0.05),  # type: ignore[arg-type]
        StatTest("psi", "Population Stability Index", _BOTH, "distance", 0.1),  # type: ignore[arg-type]
        StatTest("wasserstein", "Wasserstein distance (normed)", _NUM, "distance", 0.1),  # type: ignore[arg-type]
        StatTest("jensenshannon", "Jensen-Shannon distance", _BOTH, "distance", 0.1),  # type: ignore[arg-type]
    )
}


def get_test(name: str) -> StatTest:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown drift test {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


# --------------------------------------------------------------------------------------------
# Kolmogorov-Smirnov


def ks_statistic_from_counts(
    ref_le: IntArray, ref_lt: IntArray, n: int, cur_le: IntArray, cur_lt: IntArray, m: int
) -> float:
    """sup |F_ref - F_cur| from both ECDFs evaluated at, and just left of, each reference value.

    Between two consecutive reference values the reference ECDF is flat and the current one only
    rises, so the extremes sit at those points: the same maximum scipy finds over all data.
    """
    if ref_le.size == 0:
        return 0.0
    diffs = np.concatenate([ref_le / n - cur_le / m, ref_lt / n - cur_lt / m])
    max_s = float(diffs.max())
    min_s = float(np.clip(-diffs.min(), 0, 1))
    return max(max_s, min_s)


def ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float]:
    """(statistic, p-value) as ``scipy.stats.ks_2samp(method="auto")`` reports them for D=d.

    Exact (Hodges) when both samples have at most 10,000 rows, where scipy also rounds the
    statistic to the lattice h/lcm(n1, n2); the distribution of D_n for n = n1 n2 / (n1 + n2)
    otherwise (see :mod:`modelops.drift.ks_distribution`).
    """
    return ks_distribution.two_sample_pvalue(float(d), n1, n2)


def exact_mode(n1: int, n2: int) -> bool:
    return max(n1, n2) <= KS_MAX_EXACT_N


def ks_2samp(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """Two-sample KS on raw samples (NaNs dropped): the engine's path, for callers and tests."""
    ref = _finite_sorted(reference)
    cur = _finite_sorted(current)
    values, ref_le, ref_lt = distinct_counts(ref)
    cur_le, cur_lt = ecdf_counts(cur, values)
    d = ks_statistic_from_counts(ref_le, ref_lt, ref.size, cur_le, cur_lt, cur.size)
    return ks_pvalue(d, ref.size, cur.size)


# --------------------------------------------------------------------------------------------
# Wasserstein


def wasserstein_from_sorted(
    values: FloatArray,
    ref_le: IntArray,
    ref_lt: IntArray,
    n: int,
    cur_sorted: FloatArray,
    cur_le: IntArray,
    cur_lt: IntArray,
    *,
    sums: FloatArray | None = None,
) -> float:
    """W1 = integral |F_ref - F_cur| dx, in closed form per gap between reference values.

    In each gap the reference ECDF is a constant ``a`` and the current ECDF crosses ``a`` at most
    once, at an index known by arithmetic, so prefix sums of the sorted current values give the
    integral exactly without merging the samples. When the reference is a
    bounded sample (see ``profile``), ``a`` is the midpoint of the ECDF across the gap.
    ``sums``, when given, is a scratch buffer of m + 1 floats for the prefix sums.
    """
    m = cur_sorted.size
    k = values.size
    if k == 0 or m == 0:
        return math.nan
    shift = float(values[k // 2])  # centring keeps the sums small, hence precise
    v = values - shift
    num = ref_le[:-1] + ref_lt[1:]  # 2 * n * F_ref on each gap
    den = 2 * n
    crossing = -((-num * m) // den) - 1  # last index where F_cur is still below F_ref
    j = np.clip(crossing, 0, m - 1)

    # Prefix sums S(i) of the centred current values: one pass, then plain indexing.
    if sums is None or sums.size != m + 1:
        sums = np.empty(m + 1)
    sums[0] = 0.0
    np.subtract(cur_sorted, shift, out=sums[1:])
    np.cumsum(sums[1:], out=sums[1:])

    def prefix(i: IntArray) -> FloatArray:
        out: FloatArray = sums[i]
        return out

    s_lt0, s_le_last = prefix(cur_lt[:1])[0], prefix(cur_le[-1:])[0]
    # Left tail: the reference ECDF is 0 (the profile always keeps the minimum).
    total = (cur_lt[0] * v[0] - s_lt0) / m
    # Right tail: the reference ECDF is 1 (the profile always keeps the maximum).
    le_last = int(cur_le[-1])
    total += ((sums[-1] - s_le_last) - (m - le_last) * v[-1]) / m
    if k > 1:
        a_lo, b_hi = v[:-1], v[1:]
        a = num / den
        le_a = cur_le[:-1]
        lt_b = cur_lt[1:]
        s_le_a, s_lt_b, s_j = prefix(le_a), prefix(lt_b), prefix(j)
        # J(A, B) = integral over [A, B) of F_cur
        j_ab = (lt_b * b_hi - le_a * a_lo - (s_lt_b - s_le_a)) / m
        width = b_hi - a_lo
        above = crossing < le_a  # F_cur >= a on the whole gap
        below = crossing >= lt_b  # F_cur < a on the whole gap
        x_star = cur_sorted[j] - shift
        split = (le_a * a_lo - s_le_a + lt_b * b_hi - s_lt_b + 2 * (s_j - j * x_star)) / m
        split += a * (2 * x_star - a_lo - b_hi)
        gap = np.where(above, j_ab - a * width, np.where(below, a * width - j_ab, split))
        total += float(gap.sum())
    return float(max(total, 0.0))


def normed_wasserstein(distance: float, reference_std: float) -> float:
    return distance / max(reference_std, WASSERSTEIN_MIN_STD)


def wasserstein(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """W1 on raw samples (NaNs dropped); equals ``scipy.stats.wasserstein_distance``."""
    ref = _finite_sorted(reference)
    cur = _finite_sorted(current)
    values, ref_le, ref_lt = distinct_counts(ref)
    cur_le, cur_lt = ecdf_counts(cur, values)
    return wasserstein_from_sorted(values, ref_le, ref_lt, ref.size, cur, cur_le, cur_lt)


# --------------------------------------------------------------------------------------------
# Binned tests: chi-squared, PSI, Jensen-Shannon


def chi2_from_counts(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> tuple[float, float]:
    """Chi-squared test of homogeneity on the 2 x k table of counts (no continuity correction).

    Equal to ``scipy.stats.chi2_contingency(table, correction=False)``; for two categories it is
    the two-proportion z-test Evidently uses for binary features. Categories with no count on
    either side carry no information and are dropped; one category left means no test (p = 1).
    """
    table = np.vstack([np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, chi2_sf(stat, table.shape[1] - 1)


def chi2_sf(stat: float, df: int) -> float:
    """P(X >= stat) for X ~ chi2(df): ``scipy.stats.chi2.sf``, from ``scipy.special`` only."""
    if stat <= 0:
        return 1.0
    from scipy.special import chdtrc  # imported when a chi2 test runs, not with this module

    return float(chdtrc(df, stat))


def psi_from_counts(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum (p_cur - p_ref) * ln(p_cur / p_ref), empty proportions raised to ``epsilon``."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.sum() == 0 or cur.sum() == 0:
        return math.nan
    p = ref / ref.sum()
    q = cur / cur.sum()
    p = np.where(p == 0, epsilon, p)
    q = np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))


def jensenshannon_from_counts(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (natural log) of the two normalised histograms.

    Equal to ``scipy.spatial.distance.jensenshannon``; bounded by sqrt(ln 2) ~ 0.833.
    """
    p = np.asarray(ref_counts, dtype=np.float64)
    q = np.asarray(cur_counts, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return math.nan
    p = p / p.sum()
    q = q / q.sum()
    mid = (p + q) / 2.0
    js = (_rel_entr(p, mid).sum() + _rel_entr(q, mid).sum()) / 2.0
    return float(np.sqrt(max(js, 0.0)))


def _rel_entr(x: FloatArray, y: FloatArray) -> FloatArray:
    """``scipy.special.rel_entr`` where y > 0 wherever x > 0 (a mixture's midpoint): x ln(x/y), 0 at x = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(x > 0, x * np.log(x / y), 0.0)
    return out


# --------------------------------------------------------------------------------------------
# Shared helpers


def _finite_sorted(data: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(data, dtype=np.float64).ravel()
    arr = np.sort(arr)
    return arr[: arr.size - int(np.count_nonzero(np.isnan(arr)))]


def ecdf_counts(sorted_values: FloatArray, points: FloatArray) -> tuple[IntArray, IntArray]:
    """Counts of values <= and < each point: one binary search, a second only for tied points."""
    le = np.searchsorted(sorted_values, points, side="right").astype(np.int64)
    lt = le.copy()
    tied = np.flatnonzero((le > 0) & (sorted_values[np.maximum(le - 1, 0)] == points))
    if tied.size:
        lt[tied] = np.searchsorted(sorted_values, points[tied], side="left")
    return le, lt


def distinct_counts(sorted_values: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Distinct values of a sorted array with the counts <= and < each: its exact ECDF."""
    if sorted_values.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return np.empty(0), empty, empty
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    values = sorted_values[starts]
    lt = starts.astype(np.int64)
    le = np.concatenate([lt[1:], [sorted_values.size]]).astype(np.int64)
    return values, le, lt
