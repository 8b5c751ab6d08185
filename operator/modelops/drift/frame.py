"""The engine's in-memory data: named float64 columns and dictionary-encoded categorical columns.

No pandas: numeric columns are float64 arrays with NaN for missing values (counted, never
dropped silently), categorical columns are integer codes into a list of category labels with -1
for missing, so counting categories is one ``bincount``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from modelops.drift.errors import DriftDataError

FeatureKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class CategoricalColumn:
    """Integer codes into ``categories``; -1 marks a missing value."""

    codes: npt.NDArray[np.int64]
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.codes.size)

    @property
    def missing(self) -> int:
        return int(np.count_nonzero(self.codes < 0))

    def counts(self) -> npt.NDArray[np.int64]:
        # Missing (-1) lands in slot 0 and is cut off: one pass, no filtered copy.
        return np.bincount(self.codes + 1, minlength=len(self.categories) + 1)[1:].astype(np.int64)


Column = npt.NDArray[np.float64] | CategoricalColumn
Frame = Mapping[str, Column]
"""Columns by name; every column of one frame has the same length."""


def category_label(value: Any) -> str:
    """The label a raw value is counted under: numbers without a trailing .0, everything else str."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def categorical(values: Iterable[Any] | npt.ArrayLike) -> CategoricalColumn:
    """Encode raw values (strings, ints, bools; None/NaN = missing) as a categorical column."""
    if isinstance(values, CategoricalColumn):
        return values
    arr: npt.NDArray[Any] = values if isinstance(values, np.ndarray) else np.array(list(values), dtype=object)  # type: ignore[arg-type]
    if arr.dtype.kind in "iub" or (arr.dtype.kind in "US" and arr.size):
        uniques, inverse = np.unique(arr, return_inverse=True)
        return CategoricalColumn(inverse.astype(np.int64).ravel(), tuple(category_label(u) for u in uniques.tolist()))
    labels: dict[str, int] = {}
    codes = np.empty(arr.size, dtype=np.int64)
    for i, value in enumerate(arr.ravel().tolist()):
        if _is_missing(value):
            codes[i] = -1
        else:
            codes[i] = labels.setdefault(category_label(value), len(labels))
    return CategoricalColumn(codes, tuple(labels))


def numerical(values: npt.ArrayLike, name: str = "column") -> npt.NDArray[np.float64]:
    """A float64 view of numeric values (None becomes NaN); anything else is mistyped data."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iufb":
        return arr.astype(np.float64, copy=False).ravel()
    try:
        return np.array([math.nan if v is None else v for v in arr.ravel().tolist()], dtype=np.float64)
    except (TypeError, ValueError):
        sample = next((v for v in arr.ravel().tolist() if v is not None and not _is_number(v)), None)
        raise DriftDataError("MistypedData", f"column {name!r} is declared numerical but holds {sample!r}") from None


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def infer_kind(column: Any) -> FeatureKind:
    """Floats and ints are numerical; strings, bools and encoded categories are categorical."""
    if isinstance(column, CategoricalColumn):
        return "categorical"
    arr = np.asarray(column)
    return "numerical" if arr.dtype.kind in "iuf" else "categorical"


def frame_from_arrays(data: Mapping[str, Any]) -> dict[str, Column]:
    """A frame from raw arrays or lists, each column typed by ``infer_kind``."""
    out: dict[str, Column] = {}
    for name, values in data.items():
        if isinstance(values, CategoricalColumn):
            out[name] = values
            continue
        arr = np.asarray(values) if not isinstance(values, list) else np.asarray(values, dtype=object)
        if arr.dtype == object:
            # Lists of numbers with None stay numerical; anything with a string is categorical.
            non_missing = [v for v in arr.tolist() if not _is_missing(v)]
            if non_missing and all(isinstance(v, int | float) and not isinstance(v, bool) for v in non_missing):
                out[name] = numerical(arr, name)
                continue
            out[name] = categorical(arr)
        elif infer_kind(arr) == "numerical":
            out[name] = numerical(arr, name)
        else:
            out[name] = categorical(arr)
    return out


def frame_rows(frame: Frame) -> int:
    for column in frame.values():
        return len(column)
    return 0
