"""Reading Parquet/CSV/JSONL and the prediction log; bad files become typed errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modelops.api.driftmonitor import ColumnMapping
from modelops.drift import CategoricalColumn, DriftDataError, LogFilter, load_frame, load_reference, read_prediction_log
from modelops.drift.durations import parse_duration
from modelops.drift.predlog import parse_timestamp
from modelops.drift.profile import ProfileCache

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def table() -> pa.Table:
    return pa.table(
        {
            "age": pa.array([31.0, None, 45.5, 52.0]),
            "visits": pa.array([1, 2, None, 4]),
            "city": pa.array(["oslo", "rome", None, "oslo"]),
            "vip": pa.array([True, False, True, None]),
        }
    )


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_formats_read_alike(tmp_path, table, suffix):
    path = tmp_path / f"data.{suffix}"
    if suffix == "parquet":
        pq.write_table(table, path)
    elif suffix == "csv":
        pacsv.write_csv(table, path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in table.to_pylist()) + "\n")
    frame = load_frame(str(path))
    np.testing.assert_array_equal(np.isnan(frame["age"]), [False, True, False, False])
    assert np.isnan(frame["visits"][2])
    city = frame["city"]
    assert isinstance(city, CategoricalColumn)
    assert city.missing == 1
    assert dict(zip(city.categories, city.counts().tolist(), strict=True)) == {"oslo": 2, "rome": 1}
    vip = frame["vip"]
    assert isinstance(vip, CategoricalColumn)
    assert set(vip.categories) == {"true", "false"}


def test_fsspec_uri(table):
    import fsspec

    with fsspec.open("memory://drift/data.parquet", "wb") as fh:
        pq.write_table(table, fh)
    frame = load_frame("memory://drift/data.parquet")
    assert frame["age"].shape == (4,)


def test_declared_kinds_win_and_mistyped_is_reported(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("code,score\n1,0.5\n2,oops\n1,0.7\n")
    frame = load_frame(str(path), mapping=ColumnMapping(categorical=["code"]))
    assert isinstance(frame["code"], CategoricalColumn)
    with pytest.raises(DriftDataError, match="score") as err:
        load_frame(str(path), mapping=ColumnMapping(numerical=["score"]))
    assert err.value.reason == "MistypedData"


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (b"\x00\x01garbage", "bad.parquet", "UnreadableData"),
        (b"a,b\n", "empty.csv", "EmptyData"),
        (b"{not json\n", "bad.jsonl", "UnreadableData"),
        (b"a,b\n1,2\n", "data.txt", "InvalidConfig"),
    ],
)
def test_bad_files(tmp_path, content, name, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DriftDataError) as err:
        load_frame(str(path))
    assert err.value.reason == reason


def test_missing_file():
    with pytest.raises(DriftDataError, match="no such file") as err:
        load_frame("/nonexistent/x.parquet")
    assert err.value.reason == "UnreadableData"


def test_reference_cache_reuses_and_invalidates(tmp_path, table):
    path = tmp_path / "ref.parquet"
    pq.write_table(table, path)
    cache = ProfileCache()
    first = load_reference(str(path), cache=cache)
    assert load_reference(str(path), cache=cache) is first
    assert (cache.hits, cache.misses) == (1, 1)
    pq.write_table(table.slice(0, 3), path)
    assert load_reference(str(path), cache=cache).rows == 3


def _log_rows():
    return [
        {
            "timestamp": "2026-11-26T09:59:59Z",
            "model": "m",
            "version": "1",
            "track": "stable",
            "inputs": {"a": 0.0},
            "outputs": {"y": 1},
        },
        {
            "timestamp": "2026-11-26T10:00:00Z",
            "model": "m",
            "version": "1",
            "track": "stable",
            "inputs": {"a": 1.0, "c": "x"},
            "outputs": {"y": 0},
        },
        {
            "timestamp": (T0 + timedelta(minutes=5)).timestamp(),
            "model": "m",
            "version": "2",
            "track": "canary",
            "inputs": {"a": 2.0},
            "outputs": {"y": 1},
        },
        {
            "timestamp": "2026-11-26T11:00:00+01:00",
            "model": "m",
            "version": "1",
            "track": "stable",
            "inputs": {"a": [3.0, 4.0], "c": ["y", "z"]},
            "outputs": {"y": [1, 0]},
        },
        {
            "timestamp": "2026-11-26T10:30:00Z",
            "model": "other",
            "version": "1",
            "track": "stable",
            "inputs": {"a": 9.0},
            "outputs": {},
        },
        {
            "timestamp": "2026-11-26T11:00:00Z",
            "model": "m",
            "version": "1",
            "track": "stable",
            "inputs": {"a": 5.0},
            "outputs": {},
        },
    ]


def test_prediction_log_window_filters_and_batches(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    rows = _log_rows()
    (log / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:3]) + "\n")
    (log / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows[3:]) + '\n{"truncated": \n')
    frame, stats = read_prediction_log(str(log), LogFilter(T0, T0 + timedelta(hours=1), model="m"))
    # 10:00 (a=1), 10:05 epoch (a=2), 10:00 +01:00 batch of two (a=3, 4); 09:59:59 and 11:00 are outside.
    assert sorted(frame["a"].tolist()) == [1.0, 2.0, 3.0, 4.0]
    assert stats.malformed == 1
    c = frame["c"]
    assert isinstance(c, CategoricalColumn)
    assert c.missing == 1  # the row without "c" is a missing value, not a dropped row
    assert "outputs.y" in frame
    only_canary, _ = read_prediction_log(str(log), LogFilter(T0, T0 + timedelta(hours=1), track="canary"))
    assert only_canary["a"].tolist() == [2.0]


def test_prediction_log_parquet_and_glob(tmp_path):
    rows = _log_rows()[:3]
    for r in rows:
        r["timestamp"] = str(r["timestamp"])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p1.parquet")
    frame, _ = read_prediction_log(str(tmp_path / "*.parquet"), LogFilter(T0, T0 + timedelta(hours=1)))
    assert sorted(frame["a"].tolist()) == [1.0, 2.0]


def test_empty_window_is_bad_data(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _log_rows()) + "\n")
    with pytest.raises(DriftDataError, match="no predictions for model=m") as err:
        read_prediction_log(str(path), LogFilter(T0 + timedelta(days=1), T0 + timedelta(days=2), model="m"))
    assert err.value.reason == "EmptyData"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-26T10:00:00Z", T0),
        ("2026-11-26T11:00:00+01:00", T0),
        ("2026-11-26T10:00:00", T0),
        (T0.timestamp(), T0),
        (str(T0.timestamp()), T0),
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("1h30m", 5400), ("250ms", 0.25), ("24h", 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "1d", "h", "5m3"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_rename_is_applied_once(tmp_path):
    """A swap (a <-> b) only works if the rename is applied exactly once, by the engine."""
    from modelops.drift import compute_drift, frame_from_arrays

    rng = np.random.default_rng(2)
    ref = frame_from_arrays({"a": rng.normal(size=500), "b": rng.normal(size=500) + 10})
    path = tmp_path / "cur.parquet"
    pq.write_table(pa.table({"a": rng.normal(size=500) + 10, "b": rng.normal(size=500)}), path)
    mapping = ColumnMapping(numerical=["a", "b"], rename={"a": "b", "b": "a"})
    report = compute_drift(ref, load_frame(str(path), mapping=mapping), mapping=mapping)
    assert report.drifted_features == 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_reads_the_model_servers_own_log(tmp_path, fmt):
    """The reader and the server's writer (modelops.server.predlog) agree on the schema."""
    server_log = pytest.importorskip("modelops.server.predlog")
    config = server_log.PredictionLogConfig(target=str(tmp_path), format=fmt)
    writer = server_log.PredictionLog(
        config, {"model": "churn", "version": "3", "track": "stable"}, {"x": ["age", "income"]}
    )
    writer.start()
    writer.record("r1", {"x": np.array([[30.0, 1000.0], [40.0, 2000.0]])}, {"predict": np.array([0, 1])})
    writer.close()
    now = datetime.now(UTC)
    frame, stats = read_prediction_log(
        str(tmp_path), LogFilter(now - timedelta(hours=1), now + timedelta(minutes=1), model="churn")
    )
    assert stats.rows_matched == 2
    assert frame["age"].tolist() == [30.0, 40.0]
    assert frame["income"].tolist() == [1000.0, 2000.0]
    assert "outputs.predict" in frame
