"""The model server's prediction log, read over a time window: the one place that knows its schema.

Assumed row schema (JSONL lines or Parquet rows; a URI may be a file, a directory or a glob of
rotated files)::

    {"timestamp": "2026-11-26T10:00:00Z" | 1764151200.0,   # RFC 3339 or epoch seconds
     "model": "churn", "version": "3", "track": "stable" | "canary",
     "inputs": {"feature": value, ...},                    # a value or a list (a batch)
     "outputs": {"name": value, ...}}

Inputs become columns named by feature; outputs become ``outputs.<name>`` (map them onto a
reference column with ``columnMapping.rename``). When input values are lists of one length, the
row is a batch and expands to that many rows. Keys missing from a row are missing values
(counted as NaN), never dropped. If the server's log changes, adapt this module only.

Files are read columnar with pyarrow (Parquet, and JSONL through pyarrow's JSON reader): the
window and the model/version/track filters are compute kernels over whole columns, and
``inputs``/``outputs`` are struct columns whose fields become the frame's columns, with no Python
object per row. A log that does not fit that shape (batched list values, timestamps in mixed
forms, a line still being written, types that change between lines) is read row by row instead,
with the same result.
"""

from __future__ import annotations

import glob as _glob
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelops.artifacts import local_path
from modelops.drift.errors import DriftDataError
from modelops.drift.frame import Column, frame_from_arrays
from modelops.drift.readers import open_uri

OUTPUT_PREFIX = "outputs."


@dataclass(frozen=True)
class LogFilter:
    """Which rows count: a half-open time window and, optionally, model/version/track."""

    start: datetime
    end: datetime
    model: str | None = None
    version: str | None = None
    track: str | None = None


@dataclass
class LogStats:
    files: int = 0
    rows_read: int = 0
    rows_matched: int = 0
    malformed: int = 0


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 text (``Z`` or offset; naive means UTC) or epoch seconds; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            try:
                return datetime.fromtimestamp(float(value), tz=UTC)
            except (ValueError, OverflowError):
                return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def expand_uri(uri: str) -> list[str]:
    """A file, every file of a directory, or a glob's matches; sorted for reproducibility."""
    local = local_path(uri)
    if local is not None:
        if local.is_dir():
            return sorted(str(p) for p in local.iterdir() if p.is_file() and not p.name.startswith("."))
        if any(ch in str(local) for ch in "*?["):
            return sorted(_glob.glob(str(local)))
        return [str(local)]
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover
        raise DriftDataError("UnreadableData", f"reading {uri} needs fsspec") from exc
    fs, path = fsspec.core.url_to_fs(uri)
    protocol = uri.split("://", 1)[0]
    if any(ch in path for ch in "*?["):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = [p for p in fs.find(path)]
    else:
        found = [path]
    return sorted(f"{protocol}://{p}" if "://" not in p else p for p in found)


def _is_parquet(path: str, fmt: str) -> bool:
    name = path.split("?", 1)[0].lower()
    return fmt == "parquet" or (fmt == "auto" and name.endswith((".parquet", ".pq")))


def _read_columnar(files: list[str], flt: LogFilter, fmt: str) -> tuple[dict[str, Column], LogStats] | None:
    """Every file's window as Arrow columns, one frame; None when any file needs the row reader.

    Rows outside the window are dropped by one comparison over the timestamp column, before any
    value is converted; the struct fields of ``inputs``/``outputs`` become columns by reference.
    """
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - the drift extra is installed wherever logs are read
        return None
    from modelops.drift.readers import table_to_frame

    stats = LogStats(files=len(files))
    tables = []
    for path in files:
        try:
            table = _read_table(path, _is_parquet(path, fmt))
            window = _window(table, flt, stats) if table is not None else None
        except (pa.ArrowException, OSError, ValueError, TypeError):
            return None
        if window is None:
            return None
        tables.append(window)
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, ValueError, TypeError):  # a column's type differs between files
        return None
    return table_to_frame(table), stats


def _read_table(path: str, parquet: bool) -> Any:
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    local = local_path(path)
    if parquet and local is not None:
        return pq.read_table(str(local), memory_map=True)  # pyarrow's own reader: no Python file object
    with open_uri(path) as fh:
        return pq.read_table(fh) if parquet else pajson.read_json(fh)


def _window(table: Any, flt: LogFilter, stats: LogStats) -> Any:
    """The rows of one file in the window (and of the model/version/track), flattened; None when
    the file is not of the columnar shape (then the row reader decides, as it always did)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    if "timestamp" not in names:
        return None
    micros = _timestamp_micros(table.column("timestamp"))
    if micros is None:
        return None
    nested: list[tuple[str, Any]] = []
    for part, prefix in (("inputs", ""), ("outputs", OUTPUT_PREFIX)):
        if part not in names:
            continue
        typ = table.schema.field(part).type
        if pa.types.is_null(typ):
            continue
        if not pa.types.is_struct(typ) or any(_nested(typ.field(i).type) for i in range(typ.num_fields)):
            return None  # not an object of scalars (a batch of lists, or worse): the row reader
        nested.append((part, prefix))
    keep = pc.and_(
        pc.greater_equal(micros, pa.scalar(_epoch_micros(flt.start), pa.int64())),
        pc.less(micros, pa.scalar(_epoch_micros(flt.end), pa.int64())),
    )
    for key, want in (("model", flt.model), ("version", flt.version), ("track", flt.track)):
        if want is None:
            continue
        if key not in names:
            keep = pa.array([False] * table.num_rows)
            continue
        column = table.column(key)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return None  # str() of a number or null is the row reader's business
        keep = pc.and_(keep, pc.equal(column, pa.scalar(want, column.type)))
    stats.rows_read += table.num_rows
    stats.malformed += micros.null_count
    selected = table.filter(pc.fill_null(keep, False))
    stats.rows_matched += selected.num_rows
    columns: dict[str, Any] = {}
    for part, prefix in nested:
        struct = selected.column(part)
        for i in range(struct.type.num_fields):
            columns[prefix + struct.type.field(i).name] = pc.struct_field(struct, [i])
    return pa.table(columns)


def _nested(typ: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(typ))


def _epoch_micros(when: datetime) -> int:
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamp_micros(column: Any) -> Any:
    """Microseconds since the epoch (nulls where missing), or None for a form left to the row reader."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = column.type
    utc = pa.timestamp("us", "UTC")
    if pa.types.is_timestamp(typ):
        # Naive timestamps are UTC, as in parse_timestamp.
        as_utc = column if typ.tz is not None else pc.assume_timezone(column, "UTC")
        return pc.cast(pc.cast(as_utc, utc), pa.int64())
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            return pc.cast(pc.cast(column, utc), pa.int64())  # RFC 3339 with Z or an offset
        except pa.ArrowInvalid:
            return None  # naive text, epoch seconds as text, or garbage: counted row by row
    return None


def _rows_jsonl(uri: str, stats: LogStats) -> Iterator[Mapping[str, Any]]:
    with open_uri(uri) as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            stats.rows_read += 1
            try:
                row = json.loads(line)
            except ValueError:
                stats.malformed += 1  # e.g. a line still being written by the server
                continue
            if isinstance(row, dict):
                yield row
            else:
                stats.malformed += 1


def _rows_parquet(uri: str, stats: LogStats) -> Iterator[Mapping[str, Any]]:
    import pyarrow.parquet as pq

    with open_uri(uri) as fh:
        try:
            table = pq.read_table(fh)
        except Exception as exc:
            raise DriftDataError("UnreadableData", f"cannot read prediction log {uri}: {exc}") from exc
    for row in table.to_pylist():
        stats.rows_read += 1
        yield row


def _matches(row: Mapping[str, Any], flt: LogFilter, stats: LogStats) -> bool:
    ts = parse_timestamp(row.get("timestamp"))
    if ts is None:
        stats.malformed += 1
        return False
    if not (flt.start <= ts < flt.end):
        return False
    for key, want in (("model", flt.model), ("version", flt.version), ("track", flt.track)):
        if want is not None and str(row.get(key)) != want:
            return False
    return True


def _expand(row: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    inputs = row.get("inputs") or {}
    outputs = row.get("outputs") or {}
    if not isinstance(inputs, Mapping) or not isinstance(outputs, Mapping):
        raise DriftDataError("MistypedData", "prediction log row has inputs/outputs that are not objects")
    flat: dict[str, Any] = dict(inputs)
    flat.update({OUTPUT_PREFIX + k: v for k, v in outputs.items()})
    sizes = {len(v) for v in flat.values() if isinstance(v, list)}
    if not sizes:
        return [flat]
    if len(sizes) != 1 or any(not isinstance(v, list) for v in inputs.values()):
        raise DriftDataError(
            "MistypedData", "prediction log row mixes batched (list) and scalar inputs of other lengths"
        )
    size = sizes.pop()
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in flat.items()} for i in range(size)]


def read_prediction_log(uri: str, flt: LogFilter, fmt: str = "auto") -> tuple[dict[str, Column], LogStats]:
    """The window's predictions as a frame (columns = input features and ``outputs.*``)."""
    files = expand_uri(uri)
    if not files:
        raise DriftDataError("EmptyData", f"no prediction log files at {uri}")
    columnar = _read_columnar(files, flt, fmt)
    if columnar is not None:
        frame, stats = columnar
        if stats.rows_matched:
            return frame, stats
    stats = LogStats(files=len(files))
    columns: dict[str, list[Any]] = {}
    n = 0
    for path in files:
        name = path.split("?", 1)[0].lower()
        parquet = fmt == "parquet" or (fmt == "auto" and name.endswith((".parquet", ".pq")))
        rows = _rows_parquet(path, stats) if parquet else _rows_jsonl(path, stats)
        for row in rows:
            if not _matches(row, flt, stats):
                continue
            for flat in _expand(row):
                for key in flat.keys() - columns.keys():
                    columns[key] = [None] * n
                for key, values in columns.items():
                    values.append(flat.get(key))
                n += 1
                stats.rows_matched += 1
    if n == 0:
        who = " ".join(
            f"{k}={v}" for k, v in (("model", flt.model), ("version", flt.version), ("track", flt.track)) if v
        )
        raise DriftDataError(
            "EmptyData",
            f"no predictions{' for ' + who if who else ''} between {flt.start.isoformat()} and {flt.end.isoformat()}"
            f" in {uri} ({stats.rows_read} rows read, {stats.malformed} malformed)",
        )
    return frame_from_arrays(columns), stats
