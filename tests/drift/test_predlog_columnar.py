"""The prediction log read columnar gives what the row-by-row reader gives.

The columnar reader handles the server's own shape (Parquet or JSONL, RFC 3339 timestamps,
``inputs``/``outputs`` objects of scalars); anything else goes row by row. Each test reads the
same rows twice: once in the columnar shape, once with one detail that sends the file to the
row reader (a line still being written, a naive timestamp), and compares frames and counts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modelops.drift import CategoricalColumn, LogFilter, read_prediction_log

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _rows(n: int = 400) -> list[dict[str, Any]]:
    rng = np.random.default_rng(9)
    rows = []
    for i in range(n):
        inputs: dict[str, Any] = {"age": float(rng.normal(40, 9)), "plan": str(rng.choice(["basic", "pro"]))}
        if i % 7:
            inputs["visits"] = int(rng.poisson(3))  # a key missing from some rows: a missing value
        rows.append(
            {
                "timestamp": (T0 + timedelta(seconds=30 * i - 600)).isoformat().replace("+00:00", "Z"),
                "model": "churn" if i % 5 else "other",
                "version": "3",
                "track": "canary" if i % 4 == 0 else "stable",
                "inputs": inputs,
                "outputs": {"predict": int(i % 2), "proba": float(rng.uniform())},
            }
        )
    return rows


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a) == sorted(b)  # the row reader's column order is a set's
    for name, col in a.items():
        other = b[name]
        if isinstance(col, CategoricalColumn):
            assert isinstance(other, CategoricalColumn)
            assert [col.categories[c] if c >= 0 else None for c in col.codes] == [
                other.categories[c] if c >= 0 else None for c in other.codes
            ]
        else:
            np.testing.assert_array_equal(col, other)


WINDOW = LogFilter(T0, T0 + timedelta(hours=1), model="churn", track="stable")


def test_jsonl_columnar_equals_row_by_row(tmp_path: Path) -> None:
    rows = _rows()
    clean, torn = tmp_path / "clean", tmp_path / "torn"
    clean.mkdir()
    torn.mkdir()
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    (clean / "a.jsonl").write_text(text)
    (torn / "a.jsonl").write_text(text + '{"timestamp": "2026-11-26T10:')  # the server still writing
    columnar, c_stats = read_prediction_log(str(clean), WINDOW)
    by_row, r_stats = read_prediction_log(str(torn), WINDOW)
    _same(columnar, by_row)
    expected = [
        r
        for r in rows
        if r["model"] == "churn" and r["track"] == "stable" and "2026-11-26T10" <= r["timestamp"] < "2026-11-26T11"
    ]
    assert c_stats.rows_matched == r_stats.rows_matched == len(expected)
    assert (c_stats.rows_read, c_stats.malformed) == (400, 0)
    assert (r_stats.rows_read, r_stats.malformed) == (401, 1)
    assert list(columnar) == ["age", "plan", "visits", "outputs.predict", "outputs.proba"]
    assert int(np.isnan(columnar["visits"]).sum()) == sum(1 for r in expected if "visits" not in r["inputs"])
    np.testing.assert_array_equal(columnar["age"], [r["inputs"]["age"] for r in expected])


def test_parquet_columnar_equals_row_by_row(tmp_path: Path) -> None:
    rows = _rows()
    typed = [dict(r, timestamp=datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))) for r in rows]
    naive = [dict(r, timestamp=r["timestamp"].rstrip("Z")) for r in rows]  # naive text: UTC, row by row
    (tmp_path / "typed").mkdir()
    (tmp_path / "naive").mkdir()
    # two files, the second with a column more: the frame has it, missing for the first file's rows
    half = len(rows) // 2
    pq.write_table(pa.Table.from_pylist(typed[:half]), tmp_path / "typed" / "1.parquet")
    pq.write_table(pa.Table.from_pylist(typed[half:]), tmp_path / "typed" / "2.parquet")
    pq.write_table(pa.Table.from_pylist(naive[:half]), tmp_path / "naive" / "1.parquet")
    pq.write_table(pa.Table.from_pylist(naive[half:]), tmp_path / "naive" / "2.parquet")
    columnar, c_stats = read_prediction_log(str(tmp_path / "typed"), WINDOW)
    by_row, r_stats = read_prediction_log(str(tmp_path / "naive"), WINDOW)
    _same(columnar, by_row)
    assert c_stats.rows_matched == r_stats.rows_matched > 0
    assert c_stats.files == 2


def test_null_timestamps_are_counted_malformed(tmp_path: Path) -> None:
    rows = _rows(20)
    for r in rows[:3]:
        r["timestamp"] = None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "log.parquet")
    _frame, stats = read_prediction_log(
        str(tmp_path / "log.parquet"), LogFilter(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    )
    assert (stats.rows_read, stats.malformed, stats.rows_matched) == (20, 3, 17)
