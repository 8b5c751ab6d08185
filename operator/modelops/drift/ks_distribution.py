"""The two-sample Kolmogorov-Smirnov p-value, as ``scipy.stats.ks_2samp(method="auto")`` reports
it, without importing ``scipy.stats`` (about 2 s of CPU on import: more than a whole check).

Two regimes, switched where scipy switches (both samples at most 10,000 rows: exact):

- **Exact**: the share of the C(n1+n2, n1) monotone lattice paths from (0, 0) to (n1, n2) that
  leave the band ``|x/n1 - y/n2| < D`` (Hodges 1958). For n1 = n2 a closed alternating sum of
  binomial ratios; otherwise the path-counting recursion computed directly for "left the band"
  (Viehmann 2021, the form scipy uses): a cell outside the band is 1, a cell inside is
  ``(x * left + y * below) / (x + y)``. scipy runs that recursion column by column in compiled
  code, which is used when it loads (by file, without the rest of ``scipy.stats``); otherwise
  the recursion runs here one anti-diagonal at a time in numpy (a diagonal depends only on the
  previous one), every cell the same expression of the same two neighbours, so the numbers
  agree to the last bits either way.
- **Asymptotic**: ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``, the distribution of the two-sided
  one-sample statistic D_n, region by region as Simard & L'Ecuyer (2011) and scipy choose:
  Ruben-Gambino's closed forms at both ends, twice the one-sided Smirnov probability in the upper
  tail (``scipy.special.smirnov``, imported only when needed), Durbin's matrix (Marsaglia, Tsang &
  Wang 2003) for small n*D, and Pelz-Good's asymptotic series otherwise. Where scipy uses
  Pomeranz's recursion (n <= 140), Durbin's matrix computes the same exact probability.

tests/drift/test_ks_distribution.py holds both to scipy within 1e-9 across the regimes and
regions, the switch between them included.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

EXACT_MAX_N = 10_000
"""scipy's ``ks_2samp(method="auto")`` is exact when both samples have at most this many rows."""

_SCALE_EXP = 128
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PI2 = math.pi**2


def two_sample_pvalue(d: float, n1: int, n2: int) -> tuple[float, float]:
    """(statistic, p-value) of the two-sided two-sample KS test for the statistic ``d``.

    In the exact regime the statistic is first rounded to the lattice h / lcm(n1, n2), as scipy
    does (and reports); when the exact computation cannot give a probability, the asymptotic one
    answers, as scipy falls back.
    """
    if max(n1, n2) <= EXACT_MAX_N:
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = round(d * lcm)  # half to even, as numpy.round
        d_lattice = h * 1.0 / lcm
        if h == 0:
            return d_lattice, 1.0
        if n1 == n2:
            prob = _outside_square(n1, h)
        else:
            compiled = _compiled_band()
            prob = float(compiled(n1, n2, g, h)) if compiled is not None else _outside_band(n1, n2, g, h)
        if 0.0 <= prob <= 1.0:  # else, as scipy, the asymptotic distribution answers
            return d_lattice, prob
        d = d_lattice
    big, small = (float(n1), float(n2)) if n1 >= n2 else (float(n2), float(n1))
    en = big * small / (big + small)
    prob = kolmogorov_sf(d, round(en))
    return float(d), min(max(prob, 0.0), 1.0)


# --------------------------------------------------------------------------------------------
# Exact


def _outside_square(n: int, h: int) -> float:
    """P(D_{n,n} >= h/n) = 2 (A0 - A0 A1 + A0 A1 A2 - ...), A_k = C(2n, n-(k+1)h) / C(2n, n-kh).

    Horner's scheme from the innermost factor, each A_k a product of h ratios, in the order
    scipy multiplies them: the same rounding, so the same verdict on a sum that lands a hair
    outside [0, 1] (then both answer with the asymptotic distribution).
    """
    tail = 0.0
    for k in range(n // h, -1, -1):
        ratio = 1.0
        for j in range(h):
            ratio = (n - k * h - j) * ratio / (n + k * h + j + 1)
        tail = ratio * (1.0 - tail)
    return 2 * tail


@functools.cache
def _compiled_band() -> Callable[[int, int, int, int], float] | None:
    """scipy's compiled form of :func:`_outside_band`, loaded from its file alone.

    It lives in ``scipy/stats/_stats_pythran``; importing it the usual way would first import
    the whole ``scipy.stats`` package (~2 s). The extension needs only numpy, so it is loaded by
    path (a few ms). Where a scipy release keeps it elsewhere, or it will not load, None: the
    numpy recursion computes the same numbers, only more slowly (~10 us per diagonal).
    """
    name = "scipy.stats._stats_pythran"
    try:
        module = sys.modules.get(name)
        if module is None:
            scipy_spec = importlib.util.find_spec("scipy")  # finds the package, imports nothing
            if scipy_spec is None or scipy_spec.origin is None:
                return None
            folder = Path(scipy_spec.origin).parent / "stats"
            path = next(
                (
                    p
                    for suffix in importlib.machinery.EXTENSION_SUFFIXES
                    for p in folder.glob(f"_stats_pythran{suffix}")
                ),
                None,
            )
            if path is None:
                return None
            loader = importlib.machinery.ExtensionFileLoader(name, str(path))
            spec = importlib.util.spec_from_file_location(name, path, loader=loader)
            if spec is None:
                return None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        routine: Callable[[int, int, int, int], float] = module._compute_outer_prob_inside_method
    except Exception:  # any failure only means the slower path
        return None
    return routine


def _outside_band(n1: int, n2: int, g: int, h: int) -> float:
    """Share of lattice paths (0,0) -> (m,n) that leave ``|ng*x - mg*y| < h`` (m >= n)."""
    m, n = (n1, n2) if n1 >= n2 else (n2, n1)
    mg, ng = m // g, n // g
    width = mg + ng
    # Two diagonals in buffers indexed by x + 1: a cell outside the band (or off the grid) holds
    # 1 (every path through it has left), so the neighbours of a cell are plain slices.
    prev = np.ones(m + 3)
    cur = np.ones(m + 3)
    prev[1] = 0.0  # the origin: inside the band, no path has left yet
    xs = np.arange(m + 2, dtype=np.float64)
    ys = np.empty(m + 2)
    prev_lo = prev_hi = 0  # the band on the previous diagonal
    cur_lo, cur_hi = 0, -1  # what `cur` holds (the diagonal before that)
    for s in range(1, m + n + 1):
        # Cells (x, s-x) inside the band: mg*s - h < width*x < mg*s + h, on the grid.
        lo = max(s - n, 0, (mg * s - h) // width + 1)
        hi = min(s, m, -(-(mg * s + h) // width) - 1)
        if hi < lo:
            return 1.0  # every path crosses this diagonal outside the band
        x = xs[lo : hi + 1]
        y = np.subtract(s, x, out=ys[: hi + 1 - lo])
        # (x, y) = (x * left + y * below) / (x + y), left = (x-1, y), below = (x, y-1): the
        # same expression as scipy's, so the same rounding. A neighbour off the grid (x = 0 or
        # y = 0) holds a finite value multiplied by zero.
        out = cur[lo + 1 : hi + 2]
        np.multiply(prev[lo : hi + 1], x, out=out)
        out += prev[lo + 1 : hi + 2] * y
        out /= s
        # Cells of the older diagonal that are outside this band go back to 1.
        if cur_lo < lo:
            cur[cur_lo + 1 : min(lo, cur_hi + 1) + 1] = 1.0
        if cur_hi > hi:
            cur[max(hi + 1, cur_lo) + 1 : cur_hi + 2] = 1.0
        prev, cur = cur, prev
        cur_lo, cur_hi = prev_lo, prev_hi
        prev_lo, prev_hi = lo, hi
    return float(prev[m + 1])


# --------------------------------------------------------------------------------------------
# Asymptotic: the one-sample two-sided distribution D_n


def kolmogorov_sf(x: float, n: int) -> float:
    """P(D_n >= x) for the two-sided one-sample KS statistic (``scipy.stats.kstwo.sf``)."""
    if math.isnan(x) or n < 1:
        return math.nan
    if x <= 0.5 / n:
        return 1.0
    if x >= 1.0:
        return 0.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: P(D_n < x) = n!/n^n (2t-1)^n
        return 1.0 - _ruben_gambino_low(n, t)
    if t >= n - 1:  # Ruben-Gambino: P(D_n >= x) = 2 (1-x)^n
        return _clip(2.0 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2.0 * _smirnov(n, x))
    nx2 = t * x
    if n <= 140:
        if nx2 <= 4.0:
            return _clip(1.0 - _durbin_cdf(n, x))
        return _clip(2.0 * _smirnov(n, x))
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return _clip(2.0 * _smirnov(n, x))
    if n <= 100_000 and n * x**1.5 <= 1.4:
        return _clip(1.0 - _durbin_cdf(n, x))
    return _clip(1.0 - _pelz_good_cdf(n, x))


def _clip(p: float) -> float:
    return min(max(float(p), 0.0), 1.0)


def _smirnov(n: int, x: float) -> float:
    """The one-sided exact Smirnov probability P(D+_n >= x): scipy.special's, imported here only."""
    from scipy.special import smirnov

    return float(smirnov(n, x))


def _ruben_gambino_low(n: int, t: float) -> float:
    if n <= 140:
        return float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2.0 * t - 1.0)))
    log_p = math.lgamma(n + 1) - n * math.log(n) + n * math.log(2.0 * t - 1.0)
    return math.exp(log_p) if log_p > -745.0 else 0.0


def _durbin_cdf(n: int, x: float) -> float:
    """P(D_n < x) by Durbin's matrix: n!/n^n times the (k,k) entry of H^n, x = (k - h)/n."""
    k = math.ceil(n * x)
    h = k - n * x
    m = 2 * k - 1
    inv_fact = np.array([1.0 / math.factorial(i) for i in range(m + 1)])
    rows = np.arange(m)
    lag = rows[:, None] - rows[None, :] + 1  # H[i, j] = 1/(i-j+1)! below the superdiagonal
    hmat = np.where(lag >= 0, inv_fact[np.clip(lag, 0, m)], 0.0)
    h_pow = h ** np.arange(1, m + 1)
    hmat[:, 0] -= h_pow * inv_fact[1:]  # (1 - h^(i+1)) / (i+1)!
    hmat[m - 1, :] -= (h_pow * inv_fact[1:])[::-1]  # (1 - h^(m-j)) / (m-j)!
    if 2.0 * h - 1.0 > 0:
        hmat[m - 1, 0] += (2.0 * h - 1.0) ** m * inv_fact[m]

    # H^n by squaring, scaling by powers of two (kept in `exp2`) so nothing overflows.
    result = np.eye(m)
    exp2 = 0
    base, base_exp2 = hmat, 0
    power = n
    while power:
        if power & 1:
            result = result @ base
            exp2 += base_exp2
            exp2 += _rescale(result)
        power >>= 1
        if power:
            base = base @ base
            base_exp2 *= 2
            base_exp2 += _rescale(base)
    entry = float(result[k - 1, k - 1])
    if entry <= 0.0:
        return 0.0
    # n!/n^n in logs (exactly summed), with the scale and the entry.
    log_factor = math.fsum(np.log(np.arange(1, n + 1) / n).tolist())
    return math.exp(math.log(entry) + exp2 * math.log(2.0) + log_factor)


def _rescale(mat: np.ndarray) -> int:
    """Divide ``mat`` in place by 2^128 while its largest entry is beyond 2^128; the exponent taken."""
    taken = 0
    while float(np.abs(mat).max()) > 2.0**_SCALE_EXP:
        mat /= 2.0**_SCALE_EXP
        taken += _SCALE_EXP
    return taken


def _pelz_good_cdf(n: int, x: float) -> float:
    """Pelz & Good's series P(D_n <= x) ~ K0 + K1/sqrt(n) + K2/n + K3/n^1.5, z = x sqrt(n)."""
    z = math.sqrt(n) * x
    z2 = z * z
    if -_PI2 / 8.0 / z2 < -708.0:
        return 0.0
    kmax = math.ceil(16.0 * z / math.pi)
    k = np.arange(1, kmax + 1, dtype=np.float64)
    odd2 = (2.0 * k - 1.0) ** 2
    e_odd = np.exp(-_PI2 * odd2 / (8.0 * z2))
    e_all = np.exp(-_PI2 * k * k / (2.0 * z2))
    z4, z6 = z2 * z2, z2 * z2 * z2
    k0 = _SQRT_2PI / z * e_odd.sum()
    k1 = _SQRT_2PI / (6.0 * z4) * ((_PI2 / 4.0 * odd2 - z2) * e_odd).sum()
    k2 = (
        _SQRT_2PI
        / (72.0 * z6 * z)
        * (
            (
                6.0 * z6
                + 2.0 * z4
                + (2.0 * z4 - 5.0 * z2) * _PI2 / 4.0 * odd2
                + _PI2**2 * (1.0 - 2.0 * z2) / 16.0 * odd2**2
            )
            * e_odd
        ).sum()
        - _PI2 * _SQRT_2PI / (36.0 * z2 * z) * (k * k * e_all).sum()
    )
    k3 = (
        _SQRT_2PI
        / (6480.0 * z6 * z4)
        * (
            (
                -30.0 * z6
                - 90.0 * z4 * z4
                + _PI2 * (135.0 * z4 - 96.0 * z6) / 4.0 * odd2
                + _PI2**2 * (212.0 * z4 - 60.0 * z2) / 16.0 * odd2**2
                + _PI2**3 * (5.0 - 30.0 * z2) / 64.0 * odd2**3
            )
            * e_odd
        ).sum()
        + _PI2 * _SQRT_2PI / (216.0 * z6) * ((3.0 * z2 - _PI2 * k * k) * k * k * e_all).sum()
    )
    return float(k0 + k1 / math.sqrt(n) + k2 / n + k3 / n**1.5)
