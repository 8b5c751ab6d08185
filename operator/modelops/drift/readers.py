"""Reading reference and current data: Parquet, CSV and JSONL from paths or fsspec URIs.

Everything goes through pyarrow (C++ parsers, dictionary encoding for categories) and ends as a
:data:`~modelops.drift.frame.Frame`. Every failure is a :class:`DriftDataError` with a reason the
operator can put in a condition: unreadable bytes, a declared column of the wrong type, a
missing file. References may also be profiles (``.npz`` from ``modelops drift profile``).

Parquet is read column by column into Arrow memory (memory-mapped for local files, string
columns straight into dictionary encoding); a float64 column in one piece becomes the engine's
column without a copy, and category codes are Arrow's dictionary indices. The common case needs
neither ``pyarrow.compute`` nor ``pyarrow.dataset`` (each ~0.2-0.8 s to import on 2 cores):
they load only for conversions that need them (decimals, booleans, plain strings from CSV/JSON).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from modelops.artifacts import local_path
from modelops.drift.errors import DriftDataError
from modelops.drift.frame import CategoricalColumn, Column, FeatureKind, category_label
from modelops.drift.profile import (
    DEFAULT_BINS,
    DEFAULT_CACHE,
    DEFAULT_KS_SAMPLE,
    ProfileCache,
    ReferenceProfile,
    build_profile,
)

if TYPE_CHECKING:
    from modelops.api.driftmonitor import ColumnMapping

DataFormat = Literal["auto", "parquet", "csv", "jsonl"]
_SUFFIXES: dict[str, Literal["parquet", "csv", "jsonl"]] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".xz")


@contextlib.contextmanager
def open_uri(uri: str) -> Iterator[IO[bytes]]:
    """A binary stream for a local path or any fsspec URI (s3://, gs://, http://, ...)."""
    try:
        path = local_path(uri)
        if path is not None:
            with open(path, "rb") as fh:
                yield fh
            return
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - the drift extra is installed in the image
            raise DriftDataError(
                "UnreadableData", f"reading {uri} needs fsspec (pip install 'modelops[drift]')"
            ) from exc
        with fsspec.open(uri, "rb", compression="infer") as fh:
            yield fh
    except FileNotFoundError as exc:
        raise DriftDataError("UnreadableData", f"{uri}: no such file") from exc
    except PermissionError as exc:
        raise DriftDataError("UnreadableData", f"{uri}: permission denied") from exc


def detect_format(uri: str, fmt: str = "auto") -> Literal["parquet", "csv", "jsonl"]:
    if fmt != "auto":
        if fmt not in ("parquet", "csv", "jsonl"):
            raise DriftDataError("InvalidConfig", f"unknown data format {fmt!r}")
        return fmt  # type: ignore[return-value]
    name = uri.split("?", 1)[0].lower()
    for comp in _COMPRESSIONS:
        name = name.removesuffix(comp)
    for suffix, found in _SUFFIXES.items():
        if name.endswith(suffix):
            return found
    raise DriftDataError(
        "InvalidConfig", f"cannot tell the format of {uri}; name it .parquet/.csv/.jsonl or set format"
    )


def is_profile(uri: str) -> bool:
    """A profile is a zip (``.npz``); data files are Parquet (PAR1), CSV or JSON text."""
    if uri.split("?", 1)[0].lower().endswith(".npz"):
        return True
    try:
        with open_uri(uri) as fh:
            return fh.read(4) == b"PK\x03\x04"
    except DriftDataError:
        return False


def read_table(uri: str, fmt: str = "auto", columns: Sequence[str] | None = None) -> Any:
    """A ``pyarrow.Table`` of the file; only ``columns`` when given (Parquet reads just those)."""
    import pyarrow as pa

    kind = detect_format(uri, fmt)
    try:
        if kind == "parquet":
            local = local_path(uri)
            if local is not None:
                if not local.exists():
                    raise DriftDataError("UnreadableData", f"{uri}: no such file")
                return _read_parquet(str(local), columns, memory_map=True)
            with open_uri(uri) as fh:
                return _read_parquet(fh, columns, memory_map=False)
        import pyarrow.csv as pacsv
        import pyarrow.json as pajson

        with open_uri(uri) as fh:
            if kind == "csv":
                # Empty cells are missing values in every column, strings included.
                table = pacsv.read_csv(fh, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
            else:
                table = pajson.read_json(fh)
    except DriftDataError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise DriftDataError("UnreadableData", f"cannot read {uri} as {kind}: {_first_line(exc)}") from exc
    if columns is not None:
        present = [c for c in columns if c in table.column_names]
        table = table.select(present)
    return table


def _read_parquet(source: Any, columns: Sequence[str] | None, *, memory_map: bool) -> Any:
    """Only the wanted columns, strings dictionary-encoded as they are read (no pyarrow.dataset,
    which ``pq.read_table`` imports)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(source, memory_map=memory_map, pre_buffer=False)
    schema = file.schema_arrow
    wanted = [c for c in columns if c in schema.names] if columns is not None else list(schema.names)
    strings = [
        name
        for name in wanted
        if pa.types.is_string(schema.field(name).type) or pa.types.is_large_string(schema.field(name).type)
    ]
    if strings:  # read_dictionary is a reader option: reopen with it
        file = pq.ParquetFile(source, memory_map=memory_map, read_dictionary=strings, pre_buffer=False)
    return file.read(columns=wanted)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _declared_kinds(mapping: ColumnMapping | None) -> dict[str, FeatureKind]:
    kinds: dict[str, FeatureKind] = {}
    if mapping is not None:
        kinds.update({n: "numerical" for n in mapping.numerical or []})
        kinds.update({n: "categorical" for n in mapping.categorical or []})
    return kinds


def table_to_frame(table: Any, kinds: Mapping[str, FeatureKind] | None = None) -> dict[str, Column]:
    """Arrow columns as engine columns: numbers -> float64 (nulls -> NaN), strings/bools ->
    dictionary-encoded categories. Declared kinds win; a declared column that cannot be read as
    its kind is mistyped data. Undeclared nested or temporal columns are skipped.
    """
    import pyarrow as pa

    kinds = dict(kinds or {})
    out: dict[str, Column] = {}
    for name in table.column_names:
        col = table.column(name)
        typ = col.type
        kind = kinds.get(name)
        if kind is None:
            if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
                kind = "numerical"
            elif any(
                check(typ)
                for check in (
                    pa.types.is_string,
                    pa.types.is_large_string,
                    pa.types.is_boolean,
                    pa.types.is_dictionary,
                    pa.types.is_null,
                )
            ):
                kind = "categorical"
            else:
                continue  # timestamps, structs, lists: not features unless declared
        if kind == "numerical":
            try:
                out[name] = _as_float64(col)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DriftDataError(
                    "MistypedData", f"column {name!r} is numerical but cannot be read as numbers: {_first_line(exc)}"
                ) from exc
        else:
            out[name] = _arrow_categorical(col)
    return out


def _as_float64(col: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A numeric Arrow column as float64 with NaN for nulls: float64 in one chunk without a copy,
    integers and floats by numpy, anything else (decimals) by Arrow's cast."""
    import pyarrow as pa

    typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
            col = col.chunk(0)
        # nulls come back as NaN (integers with nulls as float64); no nulls and float64: a view
        values = col.to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(values, dtype=np.float64)
    import pyarrow.compute as pc

    return np.ascontiguousarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _arrow_categorical(col: Any) -> CategoricalColumn:
    import pyarrow as pa

    if pa.types.is_null(col.type):
        return CategoricalColumn(np.full(len(col), -1, dtype=np.int64), ())
    if not pa.types.is_dictionary(col.type):
        import pyarrow.compute as pc  # booleans and plain strings (CSV, JSON): Parquet's come encoded

        if pa.types.is_boolean(col.type):
            col = pc.if_else(col, "true", "false")
        col = pc.dictionary_encode(col)
    combined = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if isinstance(combined, pa.ChunkedArray):  # pragma: no cover - pyarrow version dependent
        combined = combined.chunk(0) if combined.num_chunks else pa.array([], type=col.type)
    indices = combined.indices
    if indices.null_count:
        # nulls come back as NaN: they become -1, every other code an exact small integer
        raw = indices.to_numpy(zero_copy_only=False)
        codes = np.where(np.isnan(raw), -1, raw).astype(np.int64)
    else:
        codes = indices.to_numpy().astype(np.int64, copy=False)
    labels = tuple(category_label(v) for v in combined.dictionary.to_pylist())
    return _merge_duplicate_labels(np.ascontiguousarray(codes, dtype=np.int64), labels)


def _merge_duplicate_labels(codes: np.ndarray[Any, Any], labels: tuple[str, ...]) -> CategoricalColumn:
    """1 and 1.0 (or chunks with repeated dictionaries) must count as one category."""
    if len(set(labels)) == len(labels):
        return CategoricalColumn(codes, labels)
    unique: dict[str, int] = {}
    remap = np.array([unique.setdefault(label, len(unique)) for label in labels] + [-1], dtype=np.int64)
    return CategoricalColumn(remap[np.where(codes < 0, len(labels), codes)], tuple(unique))


def load_frame(uri: str, fmt: str = "auto", mapping: ColumnMapping | None = None) -> dict[str, Column]:
    """Current (or raw reference) data as a frame, typed by the mapping where it declares kinds."""
    kinds = _declared_kinds(mapping)
    table = read_table(uri, fmt)
    if mapping is not None and mapping.rename:
        # Columns keep their current names (the engine applies the rename); kinds are declared
        # under reference names.
        kinds = {c: kinds[mapping.rename.get(c, c)] for c in table.column_names if mapping.rename.get(c, c) in kinds}
    if table.num_rows == 0:
        raise DriftDataError("EmptyData", f"{uri} has no rows")
    return table_to_frame(table, kinds)


def profile_from_uri(
    uri: str,
    fmt: str = "auto",
    mapping: ColumnMapping | None = None,
    *,
    ks_sample: int = DEFAULT_KS_SAMPLE,
    bins: int = DEFAULT_BINS,
    workers: int | None = None,
) -> ReferenceProfile:
    """Read raw reference data once and prepare it (the mapping's columns, or all of them)."""
    kinds = _declared_kinds(mapping)
    # Only when both roles are given is the mapping the whole feature list (Evidently's rule);
    # otherwise undeclared columns are profiled too, typed by inference.
    exact = mapping is not None and mapping.numerical is not None and mapping.categorical is not None
    table = read_table(uri, fmt, columns=list(kinds) if exact and kinds else None)
    if table.num_rows == 0:
        raise DriftDataError("EmptyData", f"reference {uri} has no rows")
    frame = table_to_frame(table, kinds)
    missing = [n for n in kinds if n not in frame]
    if missing:
        raise DriftDataError("MissingColumns", f"reference data lacks column(s): {', '.join(missing)}")
    try:
        return build_profile(
            frame, kinds if exact and kinds else None, ks_sample=ks_sample, bins=bins, workers=workers, source=uri
        )
    except ValueError as exc:
        raise DriftDataError("InvalidConfig", str(exc)) from exc


def _cache_key(uri: str, fmt: str, mapping: ColumnMapping | None) -> tuple[Any, ...]:
    stamp: Any = None
    path = local_path(uri)
    if path is not None:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
    else:
        with contextlib.suppress(Exception):
            import fsspec

            fs, remote = fsspec.core.url_to_fs(uri)
            info = fs.info(remote)
            stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("size")
    return (uri, fmt, stamp, mapping.model_dump_json() if mapping is not None else None)


def load_reference(
    uri: str,
    fmt: str = "auto",
    mapping: ColumnMapping | None = None,
    *,
    cache: ProfileCache | None = DEFAULT_CACHE,
    workers: int | None = None,
) -> ReferenceProfile:
    """A prepared reference from a profile (``.npz``) or raw data, cached by URI and version.

    Raw data is profiled once per (URI, mtime/etag, mapping): later checks in the same process
    reuse the sorted ECDFs and bins instead of rereading the training set.
    """

    def build() -> ReferenceProfile:
        if is_profile(uri):
            with open_uri(uri) as fh:
                return ReferenceProfile.load(fh)
        return profile_from_uri(uri, fmt, mapping, workers=workers)

    if cache is None:
        return build()
    return cache.get_or_build(_cache_key(uri, fmt, mapping), build)
