"""Reading what a performance check joins: the prediction log and the labels, as Arrow columns.

Vectorised end to end: Parquet through ``pyarrow.parquet`` (only the columns needed), CSV through
pyarrow's multithreaded parser, JSONL through ``pyarrow.json`` (nested ``inputs``/``outputs``
objects become struct columns, flattened to ``outputs.<name>``). A JSONL file Arrow cannot parse
in one go (a malformed line) is read line by line instead, counting the malformed lines.

The prediction log is the model server's (see :mod:`modelops.server.predlog`): one row per
prediction with ``timestamp``, ``request_id``, ``inputs`` and ``outputs``. A flat table with the
same column names (``request_id``, ``predict``, ...) works too, and so does a table with any
join key column.

This module deliberately does not import :mod:`modelops.drift.readers` (which loads scipy for
the drift tests): a performance check needs numpy and pyarrow only.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

from modelops.drift.errors import DriftDataError

Format = Literal["parquet", "csv", "jsonl"]
_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".xz")
TIMESTAMP_COLUMN = "timestamp"
OUTPUTS = "outputs."
INPUTS = "inputs."


def local_path(uri: str) -> Path | None:
    """The filesystem path of a file:// URI or a bare path; None for remote URIs."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)
    return None


@contextlib.contextmanager
def open_uri(uri: str) -> Iterator[IO[bytes]]:
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
    except IsADirectoryError as exc:
        raise DriftDataError("UnreadableData", f"{uri}: is a directory") from exc


def expand_uri(uri: str) -> list[str]:
    """A file, every (non-hidden) file of a directory, or a glob's matches; sorted."""
    local = local_path(uri)
    if local is not None:
        if local.is_dir():
            return sorted(str(p) for p in local.iterdir() if p.is_file() and not p.name.startswith("."))
        if any(ch in str(local) for ch in "*?["):
            return sorted(_glob.glob(str(local)))
        if not local.exists():
            raise DriftDataError("UnreadableData", f"{uri}: no such file or directory")
        return [str(local)]
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover
        raise DriftDataError("UnreadableData", f"reading {uri} needs fsspec") from exc
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        protocol = uri.split("://", 1)[0]
        if any(ch in path for ch in "*?["):
            found = list(fs.glob(path))
        elif fs.isdir(path):
            found = list(fs.find(path))
        else:
            found = [path]
    except (OSError, ValueError) as exc:
        raise DriftDataError("UnreadableData", f"cannot list {uri}: {_first_line(exc)}") from exc
    return sorted(f"{protocol}://{p}" if "://" not in p else p for p in found)


def detect_format(uri: str, fmt: str = "auto") -> Format:
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@dataclass
class ReadStats:
    files: int = 0
    rows: int = 0
    malformed: int = 0


def _read_jsonl_lines(fh: IO[bytes], stats: ReadStats) -> Any:
    """The slow path for a JSONL file Arrow rejects: parse line by line, skip malformed lines."""
    import pyarrow as pa

    rows = []
    for raw in fh:
        line = raw.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            stats.malformed += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            stats.malformed += 1
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DriftDataError("MistypedData", f"JSON rows of mixed types: {_first_line(exc)}") from exc


def read_file(uri: str, fmt: str, stats: ReadStats, columns: Sequence[str | tuple[str, ...]] | None = None) -> Any:
    """One file as a ``pyarrow.Table`` with nested structs flattened (``outputs.predict``)."""
    import pyarrow as pa

    kind = detect_format(uri, fmt)  # only that format's reader is imported (Parquet's takes 40 ms)
    local = local_path(uri)
    try:
        # A local file goes to Arrow by path: its own (memory-mapped, GIL-free) I/O, compression
        # from the extension. Anything else is an fsspec stream.
        with contextlib.nullcontext(str(local)) if local is not None else open_uri(uri) as src:
            if kind == "parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(src, memory_map=local is not None)
                table = pf.read(columns=_parquet_columns(set(pf.schema_arrow.names), columns))
            elif kind == "csv":
                import pyarrow.csv as pacsv

                table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
            else:
                import pyarrow.json as pajson

                try:
                    table = pajson.read_json(src)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    with open_uri(uri) as fh:
                        table = _read_jsonl_lines(fh, stats)
    except DriftDataError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise DriftDataError("UnreadableData", f"cannot read {uri} as {kind}: {_first_line(exc)}") from exc
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    stats.files += 1
    stats.rows += table.num_rows
    return table


def _parquet_columns(names: set[str], columns: Sequence[str | tuple[str, ...]] | None) -> list[str] | None:
    """Top-level columns to read: each entry is a name or alternatives (the first present wins).

    A nested name (``outputs.predict``) reads its whole top-level struct, so the flattened
    names stay ``outputs.<name>`` (Arrow would name a selected leaf ``predict``).
    """
    if columns is None:
        return None
    out: list[str] = []
    for entry in columns:
        for name in (entry,) if isinstance(entry, str) else entry:
            top = name if name in names else name.split(".", 1)[0]
            if top in names:
                if top not in out:
                    out.append(top)
                break
    return out


def read_tables(uri: str, fmt: str, columns: Sequence[str | tuple[str, ...]] | None = None) -> tuple[Any, ReadStats]:
    """Every file under ``uri`` as one table (schemas unified: a column missing in a file is null)."""
    import pyarrow as pa

    files = expand_uri(uri)
    if not files:
        raise DriftDataError("EmptyData", f"no files at {uri}")
    stats = ReadStats()
    tables = [read_file(f, fmt, stats, columns) for f in files]
    if len(tables) == 1:
        return tables[0], stats
    try:
        return pa.concat_tables(tables, promote_options="permissive"), stats
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DriftDataError("MistypedData", f"files under {uri} disagree on column types: {_first_line(exc)}") from exc


def resolve_column(table: Any, name: str) -> str | None:
    """``name`` as given, else as an output, else as an input of the prediction log."""
    for candidate in (name, OUTPUTS + name, INPUTS + name):
        if candidate in table.column_names:
            return candidate
    return None


def epoch_micros(column: Any, what: str) -> npt.NDArray[np.int64]:
    """Timestamps (Arrow timestamps, RFC 3339 text, or epoch seconds) as int64 epoch microseconds.

    A missing or unparseable value is ``INT64_MIN``; the caller counts it.
    """
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    typ = column.type
    try:
        if pa.types.is_timestamp(typ):
            if typ.tz is None:
                column = ak.assume_timezone(column, "UTC")
            us = ak.cast(ak.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        elif pa.types.is_date(typ):
            us = ak.cast(ak.cast(column, pa.timestamp("us")), pa.int64())
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            seconds = ak.cast(column, pa.float64())
            us = ak.cast(ak.call("round", ak.call("multiply", seconds, 1e6)), pa.int64(), safe=False)
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
            us = _parse_text_times(column)
        elif pa.types.is_null(typ):
            return np.full(len(column), np.iinfo(np.int64).min, dtype=np.int64)
        else:
            raise DriftDataError("MistypedData", f"{what} has type {typ}, not timestamps")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DriftDataError("MistypedData", f"{what} cannot be read as timestamps: {_first_line(exc)}") from exc
    out = ak.fill_null(us, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(out, dtype=np.int64)


def _parse_text_times(column: Any) -> Any:
    """RFC 3339 with ``Z``/offset (naive means UTC), or epoch seconds as text; null if neither."""
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    try:
        return ak.cast(ak.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    from datetime import UTC, datetime

    def one(text: str | None) -> int | None:
        if text is None:
            return None
        value = text.strip()
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            try:
                return round(float(value) * 1e6)
            except (ValueError, OverflowError):
                return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return round(parsed.timestamp() * 1e6)

    return pa.array([one(v) for v in column.to_pylist()], type=pa.int64())


@dataclass(frozen=True)
class PredictionData:
    """The prediction log's rows: join key, time (epoch µs, or None) and the output columns."""

    keys: Any
    time_us: npt.NDArray[np.int64] | None
    outputs: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    files: int = 0
    malformed: int = 0
    source: str = ""

    def column(self, name: str) -> Any | None:
        return self.outputs.get(name)


@dataclass(frozen=True)
class LabelData:
    ids: Any
    labels: Any
    time_us: npt.NDArray[np.int64] | None
    rows: int = 0
    source: str = ""


def read_predictions(
    uri: str,
    fmt: str,
    join_key: str,
    outputs: Sequence[str],
    *,
    probability_prefix: str | None = None,
    need_time: bool = False,
) -> PredictionData:
    """The columns a performance check needs from the prediction log (or a flat table).

    ``outputs`` are looked up as given, then as ``outputs.<name>``, then ``inputs.<name>``;
    every column named ``<probability_prefix><j>`` is kept too. Raises MissingColumns for a
    missing join key (or timestamps when ``need_time``), EmptyData for no rows.
    """
    import pyarrow as pa

    wanted: list[str | tuple[str, ...]] = [(join_key, OUTPUTS + join_key, INPUTS + join_key), TIMESTAMP_COLUMN]
    wanted += ["outputs", *outputs]
    table, stats = read_tables(uri, fmt, columns=wanted)
    if table.num_rows == 0:
        raise DriftDataError("EmptyData", f"the predictions at {uri} have no rows")
    key_name = resolve_column(table, join_key)
    if key_name is None:
        have = ", ".join(sorted(table.column_names)[:20])
        raise DriftDataError(
            "MissingColumns", f"the predictions at {uri} have no join key column {join_key!r} (they have: {have})"
        )
    time_us = None
    if TIMESTAMP_COLUMN in table.column_names:
        time_us = epoch_micros(table.column(TIMESTAMP_COLUMN), f"column {TIMESTAMP_COLUMN!r} of {uri}")
    elif need_time:
        raise DriftDataError(
            "MissingColumns", f"the predictions at {uri} have no {TIMESTAMP_COLUMN!r} column to select a window by"
        )
    found: dict[str, Any] = {}
    for name in outputs:
        col = resolve_column(table, name)
        if col is not None:
            found[name] = table.column(col)
    if probability_prefix:
        for col in table.column_names:
            bare = col.removeprefix(OUTPUTS)
            if bare.startswith(probability_prefix) and bare[len(probability_prefix) :].isdigit():
                found.setdefault(bare, table.column(col))
    for name, col in found.items():
        if pa.types.is_nested(col.type):
            raise DriftDataError("MistypedData", f"prediction output {name!r} holds {col.type}, not scalars")
    return PredictionData(
        keys=table.column(key_name),
        time_us=time_us,
        outputs=found,
        rows=table.num_rows,
        files=stats.files,
        malformed=stats.malformed,
        source=uri,
    )


def read_labels(
    uri: str, fmt: str, id_column: str, label_column: str, event_time_column: str | None = None
) -> LabelData:
    """The labels source's id, label and (optional) event-time columns; MissingColumns when absent."""
    import pyarrow as pa

    columns = [id_column, label_column] + ([event_time_column] if event_time_column else [])
    table, _stats = read_tables(uri, fmt, columns=columns)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        have = ", ".join(sorted(table.column_names)[:20]) or "none"
        raise DriftDataError(
            "MissingColumns", f"the labels at {uri} lack column(s) {', '.join(missing)} (they have: {have})"
        )
    if table.num_rows == 0:
        raise DriftDataError("EmptyData", f"the labels at {uri} have no rows")
    labels = table.column(label_column)
    if pa.types.is_nested(labels.type):
        raise DriftDataError("MistypedData", f"label column {label_column!r} holds {labels.type}, not scalars")
    time_us = None
    if event_time_column:
        time_us = epoch_micros(table.column(event_time_column), f"label event-time column {event_time_column!r}")
    return LabelData(ids=table.column(id_column), labels=labels, time_us=time_us, rows=table.num_rows, source=uri)


@dataclass(frozen=True)
class ReadPlan:
    """What a performance check reads: both sources and the columns it needs from each."""

    predictions_uri: str
    predictions_format: str
    join_key: str
    outputs: tuple[str, ...]
    probability_prefix: str | None
    need_time: bool
    labels_uri: str
    labels_format: str
    id_column: str
    label_column: str
    event_time_column: str | None


def read_sources(plan: ReadPlan) -> tuple[PredictionData, LabelData]:
    """Both sources at once (Arrow's readers release the GIL), each in a thread of its own."""
    return Prefetch(plan).result()


class Prefetch:
    """Both reads started in background threads, so that the reading overlaps what the caller
    still has to do (the CLI imports and validates its settings meanwhile). The check uses the
    result only if its own plan is the same; errors surface from :meth:`result`, the
    predictions' first."""

    def __init__(self, plan: ReadPlan) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.plan = plan
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prefetch")
        # Each reader's module is imported here, just before its read starts (imported in the
        # thread, it would share the GIL with the caller's own imports and start later): the
        # labels first, so that a CSV parse starts while pyarrow.parquet (40 ms) imports.
        _import_reader(plan.labels_uri, plan.labels_format)
        self._labels = pool.submit(
            read_labels, plan.labels_uri, plan.labels_format, plan.id_column, plan.label_column, plan.event_time_column
        )
        _import_reader(plan.predictions_uri, plan.predictions_format)
        self._predictions = pool.submit(
            read_predictions,
            plan.predictions_uri,
            plan.predictions_format,
            plan.join_key,
            plan.outputs,
            probability_prefix=plan.probability_prefix,
            need_time=plan.need_time,
        )
        pool.shutdown(wait=False)
        # Needed once the files are parsed (timestamps, keys): imported while they are.
        import modelops.drift.arrow_kernels  # noqa: F401

    def result(self) -> tuple[PredictionData, LabelData]:
        return self._predictions.result(), self._labels.result()


def _import_reader(uri: str, fmt: str) -> None:
    """Import the Arrow reader of the format ``uri`` has (every reader when that is not known yet)."""
    import importlib

    try:
        kinds = [detect_format(uri, fmt)]
    except DriftDataError:
        kinds = ["parquet", "csv", "jsonl"]  # a directory or a glob: the files say later
    for kind in kinds:
        importlib.import_module({"parquet": "pyarrow.parquet", "csv": "pyarrow.csv", "jsonl": "pyarrow.json"}[kind])
