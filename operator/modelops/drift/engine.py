"""The drift check: resolve which test each feature gets, compare, correct, and decide.

Entry points: :func:`compute_drift` (a full :class:`DriftReport`, with histograms for the HTML
report when asked) and :func:`run_check` (the :class:`~modelops.api.driftmonitor.CheckResult`
the DriftMonitor status holds). Both take the reference as a :class:`ReferenceProfile` (cached,
prepared once) or as a raw frame (prepared on the fly).

Each numerical column of the current data is sorted once; KS, Wasserstein, PSI/chi2/JS bins and
the report histogram are all read from that sorted array with binary searches of the (small)
reference points into it. Columns run in threads because numpy's sort releases the GIL.

Imports: numpy and the drift modules only. The API models (pydantic) are needed for a
DriftMonitor's status and for settings read from a config; a bare ``modelops drift check`` uses
:data:`DEFAULT_SETTINGS` and never builds them (~0.4 s of CPU saved on every check).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from modelops.drift import stattests as st
from modelops.drift.errors import DriftDataError
from modelops.drift.frame import CategoricalColumn, Column, FeatureKind, Frame, categorical, frame_rows, infer_kind
from modelops.drift.profile import (
    DISCRETE_MAX,
    RAW_KS_SAMPLE,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    trailing_nans,
)
from modelops.drift.stattests import MethodName

if TYPE_CHECKING:
    from modelops.api.driftmonitor import CheckResult, ColumnMapping, FeatureResult

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SMALL_SAMPLE_MAX = 1000
"""Up to this many reference rows the defaults are p-value tests (KS, chi2); above it distances
(Wasserstein, Jensen-Shannon), because with large samples a p-value flags shifts far too small to
matter (Evidently's rule)."""
HISTOGRAM_BINS = 30
UNSEEN_REPORT_LIMIT = 20


class FeatureSettings(Protocol):
    """One ``drift.features`` entry (``modelops.api.driftmonitor.FeatureTest``)."""

    @property
    def name(self) -> str: ...
    @property
    def method(self) -> Literal["auto"] | MethodName: ...
    @property
    def threshold(self) -> float | None: ...


class Settings(Protocol):
    """What the engine reads of ``modelops.api.driftmonitor.DriftSettings``."""

    @property
    def method(self) -> Literal["auto"] | MethodName: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def correction(self) -> str: ...
    @property
    def drift_share(self) -> float: ...
    @property
    def features(self) -> Sequence[FeatureSettings] | None: ...


@dataclass(frozen=True)
class DefaultSettings:
    """``DriftSettings()``, without pydantic (tests/drift/test_check_process.py keeps them equal)."""

    method: Literal["auto"] | MethodName = "auto"
    threshold: float | None = None
    correction: str = "none"
    drift_share: float = 0.5
    features: Sequence[FeatureSettings] | None = None


DEFAULT_SETTINGS = DefaultSettings()


def default_method(kind: FeatureKind, n_reference: int, n_distinct: int) -> MethodName:
    """Evidently's default rule, without its z-test (chi2 on two categories is the same test).

    - categorical, or numerical with at most 5 distinct values (reference and current together):
      chi2 up to 1,000 reference rows, Jensen-Shannon above;
    - other numerical: KS up to 1,000 reference rows, Wasserstein (normed by the reference std)
      above.
    """
    discrete = kind == "categorical" or n_distinct <= DISCRETE_MAX
    if n_reference <= SMALL_SAMPLE_MAX:
        return "chi2" if discrete else "ks"
    return "jensenshannon" if discrete else "wasserstein"


@dataclass(frozen=True)
class Histogram:
    """Reference and current proportions on shared bins (numerical) or categories."""

    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    labels: list[str] | None = None


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: FeatureKind
    test: MethodName
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    nan_reference: int = 0
    nan_current: int = 0
    p_value_raw: float | None = None
    unseen_categories: tuple[str, ...] = ()
    histogram: Histogram | None = field(default=None, compare=False)

    @property
    def score(self) -> float | None:
        """What the threshold is compared with: the p-value or the distance."""
        return self.p_value if st.get_test(self.test).score == "p_value" else self.statistic

    def to_status(self) -> FeatureResult:
        from modelops.api.driftmonitor import FeatureResult

        return FeatureResult(
            name=self.name,
            test=self.test,
            statistic=_finite_or_none(self.statistic),
            p_value=_finite_or_none(self.p_value),
            threshold=self.threshold,
            drifted=self.drifted,
            n_reference=self.n_reference,
            n_current=self.n_current,
            nan_current=self.nan_current,
            nan_reference=self.nan_reference,
            unseen_categories=list(self.unseen_categories) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "scoreKind": st.get_test(self.test).score,
            "statistic": _finite_or_none(self.statistic),
            "pValue": _finite_or_none(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "nReference": self.n_reference,
            "nCurrent": self.n_current,
            "nanReference": self.nan_reference,
            "nanCurrent": self.nan_current,
        }
        if self.p_value_raw is not None and self.p_value_raw != self.p_value:
            out["pValueUncorrected"] = self.p_value_raw
        if self.unseen_categories:
            out["unseenCategories"] = list(self.unseen_categories)
        return out


@dataclass(frozen=True)
class DriftReport:
    time: datetime
    features: list[FeatureDrift]
    drift_share_threshold: float
    correction: str = "none"
    rows_reference: int = 0
    rows_current: int = 0

    @property
    def drifted_features(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def drift_share(self) -> float:
        return self.drifted_features / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Drift when the share of drifted features reaches ``driftShare``."""
        return bool(self.features) and self.drift_share >= self.drift_share_threshold

    def sorted_features(self) -> list[FeatureDrift]:
        """Drifted first, then by how far the score is past (or from) its threshold."""
        return sorted(self.features, key=lambda f: (not f.drifted, -_severity(f), f.name))

    def to_check_result(self) -> CheckResult:
        from modelops.api.driftmonitor import CheckResult

        return CheckResult(
            time=self.time,
            dataset_drift=self.dataset_drift,
            drift_share=self.drift_share,
            drifted_features=self.drifted_features,
            total_features=len(self.features),
            features=[f.to_status() for f in self.features],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datasetDrift": self.dataset_drift,
            "driftShare": self.drift_share,
            "driftShareThreshold": self.drift_share_threshold,
            "driftedFeatures": self.drifted_features,
            "totalFeatures": len(self.features),
            "correction": self.correction,
            "rowsReference": self.rows_reference,
            "rowsCurrent": self.rows_current,
            "features": [f.to_dict() for f in self.sorted_features()],
        }


def _severity(f: FeatureDrift) -> float:
    score = f.score
    if score is None or math.isnan(score):
        return -math.inf
    if st.get_test(f.test).score == "p_value":
        return -math.log10(max(score, 1e-300)) + math.log10(max(f.threshold, 1e-300))
    return score / f.threshold if f.threshold > 0 else score


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


# --------------------------------------------------------------------------------------------
# Resolving features and their tests


@dataclass(frozen=True)
class _Plan:
    name: str
    kind: FeatureKind
    method: Literal["auto"] | MethodName
    threshold: float | None


def _plan(
    reference_kinds: Mapping[str, FeatureKind],
    current: Frame,
    settings: Settings,
    mapping: ColumnMapping | None,
) -> list[_Plan]:
    # Evidently's column-mapping rule: a role left unset (None) is inferred from the remaining
    # reference columns; a role given (even empty) is exactly what is checked.
    declared: dict[str, FeatureKind] = {}
    if mapping is not None:
        for name in mapping.numerical or []:
            declared[name] = "numerical"
        for name in mapping.categorical or []:
            declared[name] = "categorical"
    numerical_given = mapping is not None and mapping.numerical is not None
    categorical_given = mapping is not None and mapping.categorical is not None
    inferred = [
        n
        for n, kind in reference_kinds.items()
        if n not in declared
        and ((kind == "numerical" and not numerical_given) or (kind == "categorical" and not categorical_given))
    ]
    names = list(declared) + inferred
    if not names:
        raise DriftDataError("InvalidConfig", "no features to check")
    missing_ref = [n for n in names if n not in reference_kinds]
    if missing_ref:
        raise DriftDataError("MissingColumns", f"reference data lacks column(s): {', '.join(missing_ref)}")
    missing_cur = [n for n in names if n not in current]
    if missing_cur:
        have = ", ".join(sorted(current)[:20]) or "none"
        raise DriftDataError(
            "MissingColumns", f"current data lacks column(s): {', '.join(missing_cur)} (it has: {have})"
        )
    overrides = {f.name: f for f in settings.features or []}
    unknown = [n for n in overrides if n not in names]
    if unknown:
        raise DriftDataError("InvalidConfig", f"drift.features names unchecked column(s): {', '.join(unknown)}")
    plans = []
    for name in names:
        kind = declared.get(name, reference_kinds[name])
        if kind != reference_kinds[name] and kind == "numerical":
            raise DriftDataError(
                "MistypedData", f"column {name!r} is declared numerical but the reference is categorical"
            )
        override = overrides.get(name)
        method = override.method if override is not None and override.method != "auto" else settings.method
        threshold = (
            override.threshold if override is not None and override.threshold is not None else settings.threshold
        )
        if method != "auto" and kind not in st.get_test(method).kinds:
            raise DriftDataError("InvalidConfig", f"test {method!r} does not apply to {kind} feature {name!r}")
        plans.append(_Plan(name, kind, method, threshold))
    return plans


def _apply_rename(current: Frame, mapping: ColumnMapping | None) -> Frame:
    if mapping is None or not mapping.rename:
        return current
    return {mapping.rename.get(name, name): col for name, col in current.items()}


# --------------------------------------------------------------------------------------------
# Comparing one column


def _as_current_numeric(name: str, column: Column) -> FloatArray:
    if not isinstance(column, CategoricalColumn):
        return np.asarray(column, dtype=np.float64)
    try:
        lookup = np.array([float(c) for c in column.categories] + [math.nan], dtype=np.float64)
    except ValueError:
        bad = next(c for c in column.categories if not _parses(c))
        raise DriftDataError(
            "MistypedData", f"column {name!r} is numerical in the reference but holds {bad!r}"
        ) from None
    return lookup[np.where(column.codes < 0, len(column.categories), column.codes)]


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_scratch = threading.local()


def _sorted_copy(values: FloatArray) -> FloatArray:
    """``np.sort(values)`` into this thread's reusable buffer: one allocation per worker thread,
    not one per column (fresh pages cost a fault each, a large share of a check's system time)."""
    buffer: FloatArray | None = getattr(_scratch, "sorted", None)
    if buffer is None or buffer.size < values.size:
        buffer = np.empty(values.size)
        _scratch.sorted = buffer
    ordered = buffer[: values.size]
    np.copyto(ordered, values)
    ordered.sort()
    return ordered


def _prefix_buffer(size: int) -> FloatArray:
    """This thread's reusable buffer for Wasserstein's prefix sums (see :func:`_sorted_copy`)."""
    buffer: FloatArray | None = getattr(_scratch, "sums", None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size)
        _scratch.sums = buffer
    return buffer[:size]


def _compare_numeric(prof: NumericProfile, column: Column, plan: _Plan, histogram: bool) -> FeatureDrift:
    # `ordered` lives in a per-thread buffer: nothing computed from it may outlive this call.
    ordered = _sorted_copy(_as_current_numeric(plan.name, column))
    nan = trailing_nans(ordered)
    cur = ordered[: ordered.size - nan]
    m = int(cur.size)
    if m == 0:
        raise DriftDataError("EmptyData", f"column {plan.name!r} has no non-missing values in the current data")

    # Distinct values of both samples decide the discrete path; only needed for few values.
    cur_values: FloatArray | None = None
    cur_value_counts: IntArray | None = None
    n_distinct = prof.n_distinct
    if prof.n_distinct <= DISCRETE_MAX:
        cur_values, cur_le_d, cur_lt_d = st.distinct_counts(cur)
        cur_value_counts = cur_le_d - cur_lt_d
        n_distinct = int(np.union1d(prof.values, cur_values).size)
    method = plan.method if plan.method != "auto" else default_method("numerical", prof.n, n_distinct)
    test = st.get_test(method)
    threshold = plan.threshold if plan.threshold is not None else test.default_threshold

    statistic: float | None
    p_value: float | None = None
    if method in ("ks", "wasserstein"):
        cur_le, cur_lt = st.ecdf_counts(cur, prof.values)
        if method == "ks":
            d = st.ks_statistic_from_counts(prof.le, prof.lt, prof.n, cur_le, cur_lt, m)
            statistic, p_value = st.ks_pvalue(d, prof.n, m)
        else:
            w = st.wasserstein_from_sorted(
                prof.values, prof.le, prof.lt, prof.n, cur, cur_le, cur_lt, sums=_prefix_buffer(m + 1)
            )
            statistic = st.normed_wasserstein(w, prof.std)
    else:
        if cur_values is not None and cur_value_counts is not None:
            values = np.union1d(prof.values, cur_values)
            ref_counts = _counts_on(values, prof.values, prof.le - prof.lt)
            cur_counts = _counts_on(values, cur_values, cur_value_counts)
        else:
            ref_counts = prof.bin_counts
            cur_counts = np.diff(np.concatenate([[0], np.searchsorted(cur, prof.edges, side="left"), [m]])).astype(
                np.int64
            )
        statistic, p_value = _binned(method, ref_counts, cur_counts)

    hist = _numeric_histogram(prof, cur) if histogram else None
    return _feature(plan, "numerical", method, statistic, p_value, threshold, prof, m, nan, histogram=hist)


def _counts_on(grid: FloatArray, values: FloatArray, counts: IntArray) -> IntArray:
    out = np.zeros(grid.size, dtype=np.int64)
    out[np.searchsorted(grid, values)] = counts
    return out


def _binned(method: MethodName, ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float | None]:
    if method == "chi2":
        return st.chi2_from_counts(ref_counts, cur_counts)
    if method == "psi":
        return st.psi_from_counts(ref_counts, cur_counts), None
    return st.jensenshannon_from_counts(ref_counts, cur_counts), None


def _numeric_histogram(prof: NumericProfile, cur: FloatArray) -> Histogram:
    # The central 99% of both samples; the outer bins absorb the tails, so one outlier does not
    # squash the picture into a single bar.
    def ref_quantile(q: float) -> float:
        return float(prof.values[min(int(np.searchsorted(prof.le, q * prof.n)), prof.values.size - 1)])

    m = cur.size
    lo = min(ref_quantile(0.005), float(cur[int(0.005 * (m - 1))]))
    hi = max(ref_quantile(0.995), float(cur[int(0.995 * (m - 1))]))
    if hi <= lo:
        hi = lo + 1.0
    grid = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    # Reference counts <= each grid point from its (possibly sampled) ECDF.
    pos = np.searchsorted(prof.values, grid, side="right") - 1
    ref_le = np.where(pos >= 0, prof.le[np.clip(pos, 0, None)], 0)
    ref_le[-1] = prof.n
    cur_le = np.searchsorted(cur, grid, side="right")
    cur_le[-1] = cur.size
    ref_p = np.diff(np.concatenate([[0], ref_le[1:]])) / prof.n
    cur_p = np.diff(np.concatenate([[0], cur_le[1:]])) / cur.size
    return Histogram(reference=ref_p.tolist(), current=cur_p.tolist(), edges=grid.tolist())


def _compare_categorical(prof: CategoricalProfile, column: Column, plan: _Plan, histogram: bool) -> FeatureDrift:
    col = column if isinstance(column, CategoricalColumn) else categorical(np.asarray(column))
    counts = col.counts()
    m = int(counts.sum())
    if m == 0:
        raise DriftDataError("EmptyData", f"column {plan.name!r} has no non-missing values in the current data")
    index = {c: i for i, c in enumerate(prof.categories)}
    labels = list(prof.categories)
    cur_counts = np.zeros(len(labels), dtype=np.int64)
    unseen: list[str] = []
    for cat, count in zip(col.categories, counts.tolist(), strict=True):
        if count == 0:
            continue
        if cat in index:
            cur_counts[index[cat]] += count
        else:
            unseen.append(cat)
            labels.append(cat)
            cur_counts = np.append(cur_counts, count)
    ref_counts = np.concatenate([prof.counts, np.zeros(len(unseen), dtype=np.int64)])
    n_distinct = len(labels)
    method = plan.method if plan.method != "auto" else default_method("categorical", prof.n, n_distinct)
    test = st.get_test(method)
    threshold = plan.threshold if plan.threshold is not None else test.default_threshold
    statistic, p_value = _binned(method, ref_counts, cur_counts)
    hist = None
    if histogram:
        hist = Histogram(reference=(ref_counts / prof.n).tolist(), current=(cur_counts / m).tolist(), labels=labels)
    return _feature(
        plan,
        "categorical",
        method,
        statistic,
        p_value,
        threshold,
        prof,
        m,
        col.missing,
        unseen_categories=tuple(unseen[:UNSEEN_REPORT_LIMIT]),
        histogram=hist,
    )


def _feature(
    plan: _Plan,
    kind: FeatureKind,
    method: MethodName,
    statistic: float,
    p_value: float | None,
    threshold: float,
    prof: NumericProfile | CategoricalProfile,
    n_current: int,
    nan_current: int,
    **extra: Any,
) -> FeatureDrift:
    """One feature's result with its verdict: the test's score (p-value or distance) vs the threshold."""
    test = st.get_test(method)
    drifted = test.drifted(p_value if test.score == "p_value" else statistic, threshold)  # type: ignore[arg-type]
    return FeatureDrift(
        name=plan.name,
        kind=kind,
        test=method,
        statistic=statistic,
        p_value=p_value,
        p_value_raw=p_value,
        threshold=threshold,
        drifted=drifted,
        n_reference=prof.n,
        n_current=n_current,
        nan_reference=prof.nan,
        nan_current=nan_current,
        **extra,
    )


# --------------------------------------------------------------------------------------------
# Corrections and the whole check


def apply_correction(features: Sequence[FeatureDrift], correction: str) -> list[FeatureDrift]:
    """Adjust the p-values of p-value tests (Bonferroni or Benjamini-Hochberg) and re-decide.

    Distances are not p-values and are left alone. ``p_value`` becomes the adjusted value;
    ``p_value_raw`` keeps the test's own.
    """
    out = list(features)
    if correction == "none":
        return out
    idx = [i for i, f in enumerate(out) if st.get_test(f.test).score == "p_value" and f.p_value_raw is not None]
    if not idx:
        return out
    raw = np.array([out[i].p_value_raw for i in idx], dtype=np.float64)
    if correction == "bonferroni":
        adjusted = np.minimum(raw * len(idx), 1.0)
    elif correction == "benjamini-hochberg":
        adjusted = benjamini_hochberg(raw)
    else:
        raise DriftDataError("InvalidConfig", f"unknown correction {correction!r}")
    for i, p in zip(idx, adjusted.tolist(), strict=True):
        out[i] = replace(out[i], p_value=p, drifted=st.get_test(out[i].test).drifted(p, out[i].threshold))
    return out


def benjamini_hochberg(p_values: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values, as ``scipy.stats.false_discovery_control(ps, method="bh")``.

    Sorted ascending, the i-th of m becomes ``p * m / i``, then the running minimum from the
    largest down (R's ``p.adjust``), back in the original order, clipped to [0, 1].
    """
    m = p_values.size
    order = np.argsort(p_values)
    adjusted = p_values[order] * (m / np.arange(1, m + 1, dtype=np.float64))
    np.minimum.accumulate(adjusted[::-1], out=adjusted[::-1])
    out = np.empty_like(adjusted)
    out[order] = adjusted
    clipped: FloatArray = np.clip(out, 0.0, 1.0)
    return clipped


def _reference_kinds(reference: ReferenceProfile | Frame) -> dict[str, FeatureKind]:
    if isinstance(reference, ReferenceProfile):
        return {name: col.kind for name, col in reference.columns.items()}
    return {name: infer_kind(col) for name, col in reference.items()}


def _coerce_reference(frame: Frame, plans: Sequence[_Plan]) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for plan in plans:
        col = frame[plan.name]
        if plan.kind == "categorical" and not isinstance(col, CategoricalColumn):
            col = categorical(np.asarray(col))
        out[plan.name] = col
    return out


def compute_drift(
    reference: ReferenceProfile | Frame,
    current: Frame,
    settings: Settings | None = None,
    mapping: ColumnMapping | None = None,
    now: datetime | None = None,
    *,
    min_rows: int = 1,
    workers: int | None = None,
    histograms: bool = False,
) -> DriftReport:
    """Compare current data with a reference; raises :class:`DriftDataError` on bad data."""
    settings = settings or DEFAULT_SETTINGS
    now = now or datetime.now(UTC)
    current = _apply_rename(current, mapping)
    rows = frame_rows(current)
    if rows < max(min_rows, 1):
        raise DriftDataError("EmptyData", f"current data has {rows} row(s); at least {max(min_rows, 1)} needed")
    plans = _plan(_reference_kinds(reference), current, settings, mapping)
    if isinstance(reference, ReferenceProfile):
        profile = reference
    else:
        kinds = {p.name: p.kind for p in plans}
        exact_ks = {p.name: RAW_KS_SAMPLE for p in plans if p.method == "ks"}
        profile = build_profile(_coerce_reference(reference, plans), kinds, workers=workers, ks_sample_for=exact_ks)

    def one(plan: _Plan) -> FeatureDrift:
        prof: ColumnProfile = profile.columns[plan.name]
        if isinstance(prof, NumericProfile):
            if plan.kind == "categorical":
                raise DriftDataError(
                    "MistypedData", f"column {plan.name!r} is declared categorical but its profile is numerical"
                )
            return _compare_numeric(prof, current[plan.name], plan, histograms)
        return _compare_categorical(prof, current[plan.name], plan, histograms)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        features = list(pool.map(one, plans))
    features = apply_correction(features, settings.correction)
    return DriftReport(
        time=now,
        features=features,
        drift_share_threshold=settings.drift_share,
        correction=settings.correction,
        rows_reference=profile.rows,
        rows_current=rows,
    )


def run_check(
    reference: ReferenceProfile | Frame,
    current: Frame,
    settings: Settings | None = None,
    mapping: ColumnMapping | None = None,
    now: datetime | None = None,
    *,
    min_rows: int = 1,
    workers: int | None = None,
) -> CheckResult:
    """The DriftMonitor's check: a :class:`CheckResult` for its status."""
    return compute_drift(
        reference, current, settings, mapping, now, min_rows=min_rows, workers=workers
    ).to_check_result()
