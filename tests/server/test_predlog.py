"""The prediction log: sampled, off the request path, rotated, flushed on close, schema as documented."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.server.predlog import PredictionLog, PredictionLogConfig

LABELS = {"model": "lr", "version": "1", "track": "stable"}


def _log(target: str, counts: dict[str, int] | None = None, **config: Any) -> PredictionLog:
    def on_rows(written: int, dropped: int) -> None:
        if counts is not None:
            counts["written"] = counts.get("written", 0) + written
            counts["dropped"] = counts.get("dropped", 0) + dropped

    plog = PredictionLog(
        PredictionLogConfig(target=target, replica="pod-a-w0", **config), LABELS, {"input-0": ["a", "b"]}, on_rows
    )
    plog.start()
    return plog


def _rows(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_rows_schema_and_flush_on_close(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    plog = _log(str(tmp_path), counts, rotate_seconds=3600)
    plog.record(
        "r1",
        {"input-0": np.array([[1.0, 2.0], [3.0, 4.0]])},
        {"predict": np.array([1, 0]), "proba": np.array([[0.1, 0.9], [0.8, 0.2]])},
    )
    plog.record("r2", {"input-0": np.array([[5.0, 6.0]])}, {"predict": np.array([1]), "proba": np.array([[0.3, 0.7]])})
    assert not list(tmp_path.glob("*.jsonl"))  # buffered: nothing is written per request
    plog.close()
    rows = _rows(tmp_path)
    assert counts == {"written": 3, "dropped": 0}
    assert [r["request_id"] for r in rows] == ["r1", "r1", "r2"]
    first = rows[0]
    assert set(first) == {"timestamp", "model", "version", "track", "replica", "request_id", "inputs", "outputs"}
    assert (first["model"], first["version"], first["track"], first["replica"]) == ("lr", "1", "stable", "pod-a-w0")
    stamp = datetime.fromisoformat(first["timestamp"])
    assert first["timestamp"].endswith("Z")
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert [r["inputs"] for r in rows] == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}, {"a": 5.0, "b": 6.0}]
    assert rows[1]["outputs"] == {"predict": 0, "proba_0": 0.8, "proba_1": 0.2}
    (path,) = plog.files
    assert Path(path).name.startswith("predictions-lr-1-stable-pod-a-w0-")
    assert not list(tmp_path.glob(".*.tmp"))


def test_any_input_name_of_a_single_input_model_gets_the_feature_names(tmp_path: Path) -> None:
    plog = _log(str(tmp_path))
    plog.record("r", {"whatever": np.array([[1.0, 2.0]])}, {"predict": np.array([0])})
    plog.close()
    assert _rows(tmp_path)[0]["inputs"] == {"a": 1.0, "b": 2.0}


def test_rotation_by_rows(tmp_path: Path) -> None:
    plog = _log(str(tmp_path), rotate_rows=4)
    for i in range(5):
        plog.record(f"r{i}", {"input-0": np.array([[i, i], [i, i]], dtype=float)}, {"predict": np.array([0, 1])})
        time.sleep(0.25)  # let the writer thread see the buffer between records
    plog.close()
    assert len(plog.files) >= 2
    assert len(_rows(tmp_path)) == 10


def test_sampling(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    plog = _log(str(tmp_path), counts, sample_rate=0.25)
    plog.draw = random.Random(5).random  # deterministic draws for the count below
    for i in range(2000):
        plog.sample(str(i), {"input-0": np.array([[0.0, 1.0]])}, {"predict": np.array([1])})
    plog.close()
    draws = random.Random(5)
    expected = sum(1 for _ in range(2000) if draws.random() < 0.25)
    assert counts["written"] == expected == len(_rows(tmp_path))
    assert 400 < expected < 600


def test_rate_zero_writes_nothing(tmp_path: Path) -> None:
    plog = _log(str(tmp_path), sample_rate=0.0)
    plog.sample("r", {"input-0": np.array([[0.0, 1.0]])}, {"predict": np.array([1])})
    plog.close()
    assert plog.files == []
    assert not list(tmp_path.iterdir())


def test_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    plog = PredictionLog(
        PredictionLogConfig(target=str(tmp_path), max_pending=3),
        LABELS,
        {},
        lambda w, d: counts.update(written=counts.get("written", 0) + w, dropped=counts.get("dropped", 0) + d),
    )  # not started: nothing drains the buffer
    for i in range(5):
        plog.record(str(i), {"x": np.array([1.0])}, {"y": np.array([2.0])})
    plog.close()
    assert counts == {"written": 3, "dropped": 2}
    assert [r["inputs"]["x"] for r in _rows(tmp_path)] == [1.0, 1.0, 1.0]


def test_other_shapes_become_scalar_columns(tmp_path: Path) -> None:
    plog = PredictionLog(PredictionLogConfig(target=str(tmp_path)), LABELS, {})
    image = np.arange(8, dtype=np.int64).reshape(2, 2, 2)
    plog.record("r", {"img": image, "scale": np.array([0.5])}, {"label": np.array(["x", "y"], dtype=object)})
    plog.close()
    rows = _rows(tmp_path)
    assert [r["inputs"] for r in rows] == [
        {"img_0": 0, "img_1": 1, "img_2": 2, "img_3": 3, "scale": 0.5},
        {"img_0": 4, "img_1": 5, "img_2": 6, "img_3": 7, "scale": 0.5},
    ]
    assert [r["outputs"]["label"] for r in rows] == ["x", "y"]


def test_the_drift_reader_reads_it(tmp_path: Path) -> None:
    """modelops.drift reads this log for drift checks: the two must agree on the schema."""
    drift = pytest.importorskip("modelops.drift.predlog")
    plog = _log(str(tmp_path))
    plog.record("r1", {"input-0": np.array([[1.0, 2.0], [3.0, 4.0]])}, {"predict": np.array([1, 0])})
    plog.close()
    now = datetime.now(UTC)
    frame, stats = drift.read_prediction_log(
        str(tmp_path), drift.LogFilter(start=now - timedelta(minutes=5), end=now + timedelta(minutes=5), track="stable")
    )
    assert stats.rows_matched == 2
    assert {"a", "b", "outputs.predict"} <= set(frame)


def test_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    plog = _log(str(tmp_path), format="parquet")
    plog.record("r1", {"input-0": np.array([[1.0, 2.0], [3.0, 4.0]])}, {"predict": np.array([1, 0])})
    plog.close()
    (path,) = plog.files
    table = pq.read_table(path)
    assert table.num_rows == 2
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert [r["a"] for r in table.column("inputs").to_pylist()] == [1.0, 3.0]
    assert [r["predict"] for r in table.column("outputs").to_pylist()] == [1, 0]


def test_fsspec_uri() -> None:
    fsspec = pytest.importorskip("fsspec")
    plog = _log("memory://predlog-test/run1")
    plog.record("r1", {"input-0": np.array([[1.0, 2.0]])}, {"predict": np.array([1])})
    plog.close()
    (uri,) = plog.files
    with fsspec.open(uri, "rb") as fh:
        assert json.loads(fh.read())["inputs"]["a"] == 1.0
