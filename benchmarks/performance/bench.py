"""Join + every classification metric on 1M predictions and 1M labels: modelops vs pandas + scikit-learn.

    python benchmarks/performance/bench.py --rows 1000000 --repeat 3

Writes the data once (a Parquet prediction log in the model server's layout, and a CSV of labels
with an event time: 2% corrections, 2% ids without a prediction, 1% not yet known at the check
time), then, in the same run and on the same files:

- **whole process**: ``modelops performance check ... --output json`` vs ``python baseline.py``
  (pandas merge + scikit-learn metrics, in its own virtualenv), wall clock from spawn to exit,
  median of ``--repeat``;
- **in process**: each side's own timer around read + join + metrics, imports excluded.

Fails (exit 1) unless both report the same labelled count and every metric within 1e-9.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = Path(os.environ.get("PERFORMANCE_BASELINE_VENV", "/work/bench-venvs/performance-baseline"))
REQUIREMENTS = ["pandas>=2.2", "scikit-learn>=1.4", "pyarrow>=15"]
OURS_VENV = Path(os.environ.get("PERFORMANCE_MODELOPS_VENV", "/work/bench-venvs/performance-modelops"))
OURS_REQUIREMENTS = ["-e", f"{REPO}[drift]"]
START = datetime(2026, 11, 20, tzinfo=UTC)
NOW = START + timedelta(days=8)
METRICS = ("accuracy", "precision", "recall", "f1", "auc", "logLoss")


def generate(rows: int, directory: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    preds, labels = directory / f"predictions-{rows}.parquet", directory / f"labels-{rows}.csv"
    if preds.exists() and labels.exists():
        return preds, labels
    rng = np.random.default_rng(12)
    ids = np.array([f"{a:08x}-{b:04x}-4{c:03x}-a{d:03x}-{e:012x}" for a, b, c, d, e in zip(
        rng.integers(0, 2**32, rows), rng.integers(0, 2**16, rows), rng.integers(0, 4096, rows),
        rng.integers(0, 4096, rows), rng.integers(0, 2**48, rows), strict=True)])  # fmt: skip
    start_us = np.datetime64(START.replace(tzinfo=None), "us")
    t = start_us + np.sort(rng.integers(0, 7 * 86400 * 10**6, rows)).astype("timedelta64[us]")
    x = rng.normal(size=(rows, 3))
    y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ np.array([1.2, -0.8, 0.5]))))).astype(np.int64)
    p1 = np.round(1 / (1 + np.exp(-(x @ np.array([1.0, -0.7, 0.6]) + rng.normal(0, 0.3, rows)))), 4)
    predict = (p1 > 0.5).astype(np.int64)
    inputs = pa.StructArray.from_arrays([pa.array(x[:, j]) for j in range(3)], names=["tenure", "charges", "calls"])
    outputs = pa.StructArray.from_arrays(
        [pa.array(predict), pa.array(1 - p1), pa.array(p1)], names=["predict", "predict_proba_0", "predict_proba_1"]
    )
    table = pa.table(
        {
            "timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
            "model": pa.array(["churn"] * rows).dictionary_encode(),
            "version": pa.array(["3"] * rows).dictionary_encode(),
            "track": pa.array(["stable"] * rows).dictionary_encode(),
            "replica": pa.array(["churn-7d9f-w0"] * rows).dictionary_encode(),
            "request_id": pa.array(ids),
            "inputs": inputs,
            "outputs": outputs,
        }
    )
    pq.write_table(table, preds)

    # Labels: 96% of the predictions get one a day or two later; 2% are corrected later (half
    # flipped); 2% have ids the log never saw; 1% arrive after the check time.
    n_main = int(rows * 0.96)
    pick = rng.permutation(rows)[:n_main]
    delay = rng.integers(3600, 2 * 86400, n_main).astype("timedelta64[s]").astype("timedelta64[us]")
    at = t[pick] + delay
    late = rng.random(n_main) < 0.01
    at[late] = np.datetime64(NOW.replace(tzinfo=None), "us") + np.timedelta64(3600, "s")
    fixes = pick[: int(rows * 0.02)]
    fix_at = at[: fixes.size] + np.timedelta64(7200, "s")
    fix_label = np.where(rng.random(fixes.size) < 0.5, 1 - y[fixes], y[fixes])
    n_orphan = rows - n_main - fixes.size
    orphan_ids = np.array([f"orphan-{i:09d}" for i in range(n_orphan)])
    all_ids = np.concatenate([ids[pick], ids[fixes], orphan_ids])
    all_labels = np.concatenate([y[pick], fix_label, rng.integers(0, 2, n_orphan)])
    all_at = np.concatenate([at, fix_at, t[:n_orphan] + np.timedelta64(86400, "s")])
    order = rng.permutation(all_ids.size)
    labels_table = pa.table(
        {
            "request_id": pa.array(all_ids[order]),
            "label": pa.array(all_labels[order]),
            "labelled_at": pc.strftime(
                pa.array(all_at[order], pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ"
            ),
        }
    )
    pacsv.write_csv(labels_table, labels)
    return preds, labels


def ensure_venv(venv: Path, requirements: list[str]) -> Path:
    """A virtualenv of its own for each side: each process loads only what its side installs (no
    ``.pth`` hooks or packages of the environment that runs this script)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds from spawn to exit, and the process's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ours_cmd(python: Path, preds: Path, labels: Path, out: Path) -> list[str]:
    modelops = str(python.with_name("modelops"))
    return [modelops, "performance", "check", "--predictions", str(preds), "--labels", str(labels), "--task",
            "binary", "--event-time-column", "labelled_at", "--now", NOW.isoformat(), "--output", "json",
            "-o", str(out)]  # fmt: skip


def in_process(preds: Path, labels: Path, repeat: int) -> tuple[float, Any]:
    from modelops.api.performance import PerformanceSettings
    from modelops.drift.performance import check_performance

    cfg = PerformanceSettings.model_validate(
        {"labels": {"uri": str(labels), "eventTimeColumn": "labelled_at"}, "task": "binary"}
    )
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = check_performance(cfg, str(preds), now=NOW)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def versions(python: Path, ours_python: Path) -> dict[str, str]:
    def ask(py: Path, modules: str) -> list[str]:
        code = f"import {modules}; print(" + ", ".join(f"{m}.__version__" for m in modules.split(", ")) + ")"
        return subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True).stdout.split()

    pandas, sklearn, pyarrow, numpy = ask(python, "pandas, sklearn, pyarrow, numpy")
    our_numpy, our_pyarrow, our_pydantic = ask(ours_python, "numpy, pyarrow, pydantic")
    return {
        "python": sys.version.split()[0],
        "numpy (ours)": our_numpy,
        "pyarrow (ours)": our_pyarrow,
        "pydantic (ours)": our_pydantic,
        "pandas (baseline)": pandas,
        "scikit-learn (baseline)": sklearn,
        "pyarrow (baseline)": pyarrow,
        "numpy (baseline)": numpy,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/modelops-performance-bench"))
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()
    python = ensure_venv(VENV, REQUIREMENTS)
    ours_python = ensure_venv(OURS_VENV, OURS_REQUIREMENTS)
    preds, labels = generate(args.rows, args.dir)
    ours_out, base_out = args.dir / "ours.json", args.dir / "baseline.json"
    base_cmd = [str(python), str(HERE / "baseline.py"), str(preds), str(labels), NOW.isoformat(), str(base_out)]
    load_before = os.getloadavg()[0]
    whole_ours, whole_base, cpu_ours, cpu_base, base_inproc = [], [], [], [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        wall, cpu = timed(ours_cmd(ours_python, preds, labels, ours_out))
        whole_ours.append(wall)
        cpu_ours.append(cpu)
        wall, cpu = timed(base_cmd)
        whole_base.append(wall)
        cpu_base.append(cpu)
        base_inproc.append(json.loads(base_out.read_text())["inProcessSeconds"])
    ours_inproc, _result = in_process(preds, labels, args.repeat)
    load_after = os.getloadavg()[0]

    ours = json.loads(ours_out.read_text())
    base = json.loads(base_out.read_text())
    ours_metrics = {m["name"]: m.get("value") for m in ours["metrics"]}
    diffs = {name: abs(ours_metrics[name] - base[name]) for name in METRICS}
    equal = (
        ours["labelled"] == base["labelled"]
        and ours["predictions"] == base["predictions"]
        and all(d <= 1e-9 for d in diffs.values())
    )
    report = {
        "rows": args.rows,
        "predictions": ours["predictions"],
        "labelled": ours["labelled"],
        "coverage": ours["coverage"],
        "quality": ours["quality"],
        "metrics": ours_metrics,
        "max_abs_difference": max(diffs.values()),
        "equal": equal,
        "whole_process_s": {"modelops": statistics.median(whole_ours), "pandas+sklearn": statistics.median(whole_base)},
        "in_process_s": {"modelops": ours_inproc, "pandas+sklearn": statistics.median(base_inproc)},
        "whole_process_cpu_s": {"modelops": statistics.median(cpu_ours), "pandas+sklearn": statistics.median(cpu_base)},
        "runs": {"modelops": whole_ours, "pandas+sklearn": whole_base},
        "load_average": [load_before, load_after],
        "versions": versions(python, ours_python),
    }
    w, i, c = report["whole_process_s"], report["in_process_s"], report["whole_process_cpu_s"]
    report["speedup"] = {
        "whole_process": w["pandas+sklearn"] / w["modelops"],
        "in_process": i["pandas+sklearn"] / i["modelops"],
        "whole_process_cpu": c["pandas+sklearn"] / c["modelops"],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not equal:
        print(f"results differ: {diffs}, labelled {ours['labelled']} vs {base['labelled']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
