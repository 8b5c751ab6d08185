"""The prediction log: sampled requests written off the request path, for drift monitoring.

The request path only draws a random number and appends a reference to a bounded deque; a
background thread turns the records into rows and writes one file per rotation (rows or
seconds, whichever comes first), so a request never waits for disk or network. Files are written
whole (a temporary name then rename locally, one object per file on fsspec URIs), so a reader
never sees half a file. ``close()`` (on SIGTERM, after in-flight requests finish) drains
everything still buffered into a last file.

Row schema: one row per batch element, JSONL lines or Parquet rows (``inputs``/``outputs`` are
struct columns there), read back by ``modelops.drift.predlog``::

    {"timestamp": "2026-11-26T10:00:00.123456Z",   # answered at, UTC (timestamp[us, UTC] in Parquet)
     "model": "churn", "version": "3", "track": "stable" | "canary",
     "replica": "<pod or host>-w<worker>", "request_id": "...",
     "inputs": {"<feature>": scalar, ...},
     "outputs": {"<output>": scalar, ...}}

Every value is a scalar, so each key is one column: a [batch, F] input contributes its F
features by the model's feature names (else ``<input>_<j>``); a [batch] input one value named
after the input; other per-row shapes are flattened into ``<name>_<j>``. Outputs likewise
(``predict``; ``predict_proba_0``, ``predict_proba_1``).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import orjson

from modelops.artifacts import local_path

log = logging.getLogger(__name__)

Record = tuple[float, str, dict[str, np.ndarray[Any, Any]], dict[str, np.ndarray[Any, Any]]]


@dataclass(frozen=True)
class PredictionLogConfig:
    """Where and how often; ``replica`` names this process in file names (pod name, worker)."""

    target: str
    sample_rate: float = 1.0
    format: Literal["jsonl", "parquet"] = "jsonl"
    rotate_rows: int = 10_000
    rotate_seconds: float = 60.0
    max_pending: int = 50_000
    replica: str = "replica"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part) or "_"


class PredictionLog:
    """Sample on the event loop, write on a thread; ``close()`` flushes everything."""

    def __init__(
        self,
        config: PredictionLogConfig,
        labels: dict[str, str],
        feature_names: dict[str, list[str]],
        on_rows: Any = None,
    ) -> None:
        if not 0.0 <= config.sample_rate <= 1.0:
            raise ValueError("prediction log sample rate must be within [0, 1]")
        if config.format == "parquet":
            import pyarrow  # noqa: F401  (fail at start-up, not at the first rotation)
        self.config = config
        self._labels = labels
        self._features = feature_names
        self._on_rows = on_rows or (lambda written, dropped: None)
        self._pending: deque[Record] = deque()
        self._rows: list[dict[str, Any]] = []
        self._opened = time.monotonic()
        self._seq = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # rows/seq: the writer thread, and close() after it stopped
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.rate = config.sample_rate
        self.always = config.sample_rate >= 1.0
        self.draw = random.random  # the request path samples inline: rate, always and draw
        self._local = local_path(config.target)
        if self._local is not None:
            self._local.mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def record(
        self,
        request_id: str,
        inputs: dict[str, np.ndarray[Any, Any]],
        outputs: dict[str, np.ndarray[Any, Any]],
    ) -> None:
        """Hot path, for a request already sampled (``always or draw() < rate``): hand over
        references (the arrays are not mutated afterwards)."""
        if len(self._pending) >= self.config.max_pending:
            self._on_rows(0, 1)
            return
        self._pending.append((time.time(), request_id, inputs, outputs))

    def sample(
        self,
        request_id: str,
        inputs: dict[str, np.ndarray[Any, Any]],
        outputs: dict[str, np.ndarray[Any, Any]],
    ) -> None:
        """Sample, then record."""
        if self.always or self.draw() < self.rate:
            self.record(request_id, inputs, outputs)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._drain()
                if self._rows and (
                    len(self._rows) >= self.config.rotate_rows
                    or time.monotonic() - self._opened >= self.config.rotate_seconds
                ):
                    self._write()
            except Exception:  # the log must never take the server down
                log.exception("prediction log: write failed")

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread, then write everything still buffered."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._drain()
        if self._rows:
            self._write()

    def _drain(self) -> None:
        with self._lock:
            while self._pending:
                ts, request_id, inputs, outputs = self._pending.popleft()
                self._rows.extend(self._to_rows(ts, request_id, inputs, outputs))

    def _to_rows(
        self,
        ts: float,
        request_id: str,
        inputs: dict[str, np.ndarray[Any, Any]],
        outputs: dict[str, np.ndarray[Any, Any]],
    ) -> list[dict[str, Any]]:
        first = next(iter(inputs.values()))
        batch = int(first.shape[0]) if first.ndim >= 1 else 1
        inputs_cols: dict[str, list[Any]] = {}
        only = next(iter(self._features.values())) if len(self._features) == 1 and len(inputs) == 1 else None
        for name, array in inputs.items():
            names = self._features.get(name, only)  # a single-input model accepts any input name
            if array.ndim == 2 and array.shape[0] == batch and names and len(names) == array.shape[1]:
                for j, feature in enumerate(names):
                    inputs_cols[feature] = _values(array[:, j])
            else:
                inputs_cols.update(_columns(name, array, batch))
        outputs_cols: dict[str, list[Any]] = {}
        for name, array in outputs.items():
            outputs_cols.update(_columns(name, array, batch))
        stamp = datetime.fromtimestamp(ts, UTC)
        labels = self._labels
        replica = self.config.replica
        return [
            {
                "timestamp": stamp,
                **labels,
                "replica": replica,
                "request_id": request_id,
                "inputs": {k: v[i] for k, v in inputs_cols.items()},
                "outputs": {k: v[i] for k, v in outputs_cols.items()},
            }
            for i in range(batch)
        ]

    def _write(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._seq += 1
            seq = self._seq
            self._opened = time.monotonic()
        if not rows:
            return
        first = rows[0]["timestamp"].strftime("%Y%m%dT%H%M%S%fZ")
        labels = "-".join(_safe(self._labels[k]) for k in ("model", "version", "track"))
        name = f"predictions-{labels}-{_safe(self.config.replica)}-{first}-{seq:05d}.{self.config.format}"
        try:
            data = self._encode(rows)
            self._store(name, data)
        except Exception:
            self._on_rows(0, len(rows))
            raise
        self._on_rows(len(rows), 0)

    def _encode(self, rows: list[dict[str, Any]]) -> bytes:
        if self.config.format == "jsonl":
            dumps = orjson.dumps
            opts = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY
            return b"".join(dumps(row, option=opts) + b"\n" for row in rows)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return bytes(sink.getvalue().to_pybytes())

    def _store(self, name: str, data: bytes) -> None:
        if self._local is not None:
            final = self._local / name
            tmp = self._local / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, final)
            self.files.append(str(final))
            return
        import fsspec

        uri = f"{self.config.target.rstrip('/')}/{name}"
        with fsspec.open(uri, "wb") as fh:
            fh.write(data)
        self.files.append(uri)


def _values(column: np.ndarray[Any, Any]) -> list[Any]:
    if column.dtype == object:
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in column.tolist()]
    return list(column.tolist())


def _columns(name: str, array: np.ndarray[Any, Any], batch: int) -> dict[str, list[Any]]:
    """Scalar columns of one tensor: itself for [batch], ``<name>_<j>`` for [batch, ...]."""
    if array.ndim == 1 and array.shape[0] == batch:
        return {name: _values(array)}
    if array.ndim >= 2 and array.shape[0] == batch:
        flat = array.reshape(batch, -1)
        return {f"{name}_{j}": _values(flat[:, j]) for j in range(flat.shape[1])}
    whole = _values(array.ravel())  # not batched like the first input: repeated on every row
    if len(whole) == 1:
        return {name: whole * batch}
    return {f"{name}_{j}": [v] * batch for j, v in enumerate(whole)}


def replica_name(worker: int) -> str:
    """The pod (or host) name plus the worker index: unique per replica and process."""
    host = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or os.uname().nodename
    return f"{host}-w{worker}"
