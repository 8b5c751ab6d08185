"""The prepared reference: everything a check needs from the training data, computed once.

Per numerical column: the exact ECDF at a bounded set of distinct values (all of them when there
are at most ``ks_sample``; otherwise evenly spaced order statistics, always including the minimum
and maximum), mean and std, and reference-quantile bin edges with their counts. Per categorical
column: category counts. NaN/missing counts are kept for the report.

A profile is what ``modelops drift profile`` writes (a ``.npz`` file, no pickles) and what the
engine keeps in its cache, so a check never rereads or resorts the training set. Built from raw
data with ``n <= ks_sample`` distinct values it is exact: KS, Wasserstein, chi2, PSI and JS give
the same numbers as on the raw reference. Above that, the reference ECDF is known exactly at the
kept points and to within 1/ks_sample between them.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from modelops.drift.defaults import DEFAULT_BINS as DEFAULT_BINS  # re-exported (defined light for --help)
from modelops.drift.defaults import DEFAULT_KS_SAMPLE as DEFAULT_KS_SAMPLE
from modelops.drift.errors import DriftDataError
from modelops.drift.frame import CategoricalColumn, FeatureKind, Frame, frame_rows
from modelops.drift.stattests import KS_MAX_EXACT_N, distinct_counts

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROFILE_FORMAT = "modelops.dev/drift-profile/v1"
RAW_KS_SAMPLE = 100_000
"""Distinct values kept for a KS-tested column when a check prepares a raw reference in memory:
KS is exact (equal to scipy) up to this many distinct reference values."""
DISCRETE_MAX = 5
"""A numerical column with at most this many distinct values is compared as categories
(Evidently's rule)."""


@dataclass(frozen=True)
class NumericProfile:
    name: str
    n: int
    nan: int
    n_distinct: int
    mean: float
    std: float
    values: FloatArray
    le: IntArray
    lt: IntArray
    edges: FloatArray
    bin_counts: IntArray

    kind: FeatureKind = field(default="numerical", init=False)

    @property
    def exact(self) -> bool:
        return self.values.size == self.n_distinct


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    n: int
    nan: int
    categories: tuple[str, ...]
    counts: IntArray

    kind: FeatureKind = field(default="categorical", init=False)


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    columns: dict[str, ColumnProfile]
    rows: int
    ks_sample: int = DEFAULT_KS_SAMPLE
    bins: int = DEFAULT_BINS
    source: str | None = None

    def save(self, target: str | os.PathLike[str] | IO[bytes]) -> None:
        """Write a compressed ``.npz``: arrays per column plus one JSON metadata entry."""
        arrays: dict[str, Any] = {}
        meta: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "ksSample": self.ks_sample,
            "bins": self.bins,
            "source": self.source,
            "columns": [],
        }
        for i, col in enumerate(self.columns.values()):
            entry: dict[str, Any] = {"name": col.name, "kind": col.kind, "n": col.n, "nan": col.nan}
            if isinstance(col, NumericProfile):
                entry.update(nDistinct=col.n_distinct, mean=col.mean, std=col.std)
                for key in ("values", "le", "lt", "edges", "bin_counts"):
                    arrays[f"c{i}_{key}"] = getattr(col, key)
            else:
                entry["categories"] = list(col.categories)
                arrays[f"c{i}_counts"] = col.counts
            meta["columns"].append(entry)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        if isinstance(target, str | os.PathLike):
            # np.savez would append ".npz" to any other file name.
            with open(target, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        else:
            np.savez_compressed(target, **arrays)

    @classmethod
    def load(cls, source: str | os.PathLike[str] | IO[bytes]) -> ReferenceProfile:
        try:
            with np.load(source, allow_pickle=False) as npz:
                meta = json.loads(bytes(npz["meta"]).decode())
                if meta.get("format") != PROFILE_FORMAT:
                    raise DriftDataError("UnreadableData", f"not a drift profile (format {meta.get('format')!r})")
                columns: dict[str, ColumnProfile] = {}
                for i, entry in enumerate(meta["columns"]):
                    if entry["kind"] == "numerical":
                        columns[entry["name"]] = NumericProfile(
                            name=entry["name"],
                            n=entry["n"],
                            nan=entry["nan"],
                            n_distinct=entry["nDistinct"],
                            mean=entry["mean"],
                            std=entry["std"],
                            **{k: npz[f"c{i}_{k}"] for k in ("values", "le", "lt", "edges", "bin_counts")},
                        )
                    else:
                        columns[entry["name"]] = CategoricalProfile(
                            name=entry["name"],
                            n=entry["n"],
                            nan=entry["nan"],
                            categories=tuple(entry["categories"]),
                            counts=npz[f"c{i}_counts"],
                        )
        except DriftDataError:
            raise
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise DriftDataError("UnreadableData", f"cannot read drift profile: {exc}") from exc
        return cls(columns, meta["rows"], meta["ksSample"], meta["bins"], meta.get("source"))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.save(buf)
        return buf.getvalue()


def profile_numeric(
    name: str, values: FloatArray, ks_sample: int = DEFAULT_KS_SAMPLE, bins: int = DEFAULT_BINS
) -> NumericProfile:
    """Sort once; the ECDF, moments and quantile bins all come from the sorted array."""
    ordered = np.sort(values)
    nan = trailing_nans(ordered)
    ordered = ordered[: ordered.size - nan]
    n = int(ordered.size)
    if n == 0:
        raise DriftDataError("EmptyData", f"column {name!r} has no non-missing values in the reference")
    n_distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
    if n_distinct > ks_sample:
        # Evenly spaced order statistics (minimum and maximum included) with their exact ECDF.
        ranks = np.round(np.linspace(0, n - 1, ks_sample)).astype(np.int64)
        distinct = dedupe_sorted(ordered[ranks])
        le = np.searchsorted(ordered, distinct, side="right").astype(np.int64)
        lt = np.searchsorted(ordered, distinct, side="left").astype(np.int64)
    else:
        distinct, le, lt = distinct_counts(ordered)
    edges = quantile_edges(ordered, bins)
    bin_counts = np.diff(np.concatenate([[0], np.searchsorted(ordered, edges, side="left"), [n]])).astype(np.int64)
    return NumericProfile(
        name=name,
        n=n,
        nan=nan,
        n_distinct=n_distinct,
        mean=float(ordered.mean()),
        std=float(ordered.std()),
        values=np.ascontiguousarray(distinct),
        le=le,
        lt=lt,
        edges=edges,
        bin_counts=bin_counts,
    )


def dedupe_sorted(values: FloatArray) -> FloatArray:
    """Unique values of a sorted array by one comparison pass (np.unique hashes, far slower)."""
    if values.size < 2:
        return values
    keep: FloatArray = values[np.concatenate([[True], values[1:] != values[:-1]])]
    return keep


def trailing_nans(ordered: FloatArray) -> int:
    """NaNs sort last, so counting them is one binary search, not a pass over the data."""
    if ordered.size == 0 or not np.isnan(ordered[-1]):
        return 0
    return int(ordered.size - np.searchsorted(ordered, np.nan, side="left"))


def quantile_edges(ordered: FloatArray, bins: int) -> FloatArray:
    """Interior edges at the reference's 1/bins quantiles; duplicates (ties) merged.

    Bin i holds edges[i-1] <= x < edges[i]; the outer bins are open, so current values outside
    the reference range still count.
    """
    if ordered.size == 0 or bins < 2:
        return np.empty(0)
    # Linear interpolation between order statistics (numpy's default quantile method), read
    # straight from the sorted array instead of re-partitioning it.
    pos = np.arange(1, bins) / bins * (ordered.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    qs = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    edges = dedupe_sorted(qs)
    # An edge at the minimum would leave bin 0 empty by construction.
    kept: FloatArray = edges[edges > ordered[0]]
    return kept


def profile_categorical(name: str, column: CategoricalColumn) -> CategoricalProfile:
    counts = column.counts()
    present = counts > 0
    n = int(counts.sum())
    if n == 0:
        raise DriftDataError("EmptyData", f"column {name!r} has no non-missing values in the reference")
    cats = tuple(c for c, keep in zip(column.categories, present, strict=True) if keep)
    return CategoricalProfile(name=name, n=n, nan=column.missing, categories=cats, counts=counts[present])


def build_profile(
    frame: Frame,
    kinds: Mapping[str, FeatureKind] | None = None,
    *,
    ks_sample: int = DEFAULT_KS_SAMPLE,
    bins: int = DEFAULT_BINS,
    workers: int | None = None,
    source: str | None = None,
    ks_sample_for: Mapping[str, int] | None = None,
) -> ReferenceProfile:
    """Prepare every column of a reference frame (in threads: numpy's sort releases the GIL).

    ``ks_sample_for`` overrides the bound per column (the engine keeps more points for columns
    whose test is KS, so KS on raw data matches scipy).
    """
    overrides = dict(ks_sample_for or {})
    if min([ks_sample, *overrides.values()]) <= KS_MAX_EXACT_N:
        raise ValueError(f"ks_sample must exceed {KS_MAX_EXACT_N} so exact KS p-values use all reference rows")
    rows = frame_rows(frame)
    if rows == 0:
        raise DriftDataError("EmptyData", "the reference data has no rows")
    names = list(kinds) if kinds is not None else list(frame)
    missing = [n for n in names if n not in frame]
    if missing:
        raise DriftDataError("MissingColumns", f"reference data lacks column(s) {', '.join(missing)}")

    def one(name: str) -> ColumnProfile:
        col = frame[name]
        if isinstance(col, CategoricalColumn):
            return profile_categorical(name, col)
        return profile_numeric(name, np.asarray(col, dtype=np.float64), overrides.get(name, ks_sample), bins)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        profiles = list(pool.map(one, names))
    return ReferenceProfile({p.name: p for p in profiles}, rows, ks_sample, bins, source)


class ProfileCache:
    """A small LRU of prepared references, keyed by the caller (e.g. URI plus etag/mtime)."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, ReferenceProfile] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: Any, build: Callable[[], ReferenceProfile]) -> ReferenceProfile:
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        profile = build()
        self._entries[key] = profile
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return profile

    def clear(self) -> None:
        self._entries.clear()


DEFAULT_CACHE = ProfileCache()
