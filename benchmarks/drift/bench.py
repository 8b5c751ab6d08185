"""Drift engines side by side: Evidently, a per-feature scipy loop, and modelops (cold and cached).

Usage (from the repository root)::

    python benchmarks/drift/bench.py --rows 10000 100000 1000000 --out benchmarks/drift/results.json

Data: 50 features (40 numerical, 10 categorical of cardinality 20), the same seed in every
process. Ten features really drift (num0-num7, cat0-cat1); five more (num8-num12) carry a
negligible 0.01-sigma shift that large-sample p-values flag but that should not count as drift.

Every engine runs in its own process so peak RSS is its own; Evidently runs in a separate
virtualenv (created on first use, never in the main environment). Only the comparison is timed:
data generation and loading into each engine's native format are not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_NUM = 40
N_CAT = 10
CARDINALITY = 20
DRIFTED = {f"num{i}" for i in range(8)} | {"cat0", "cat1"}
NEGLIGIBLE = {f"num{i}" for i in range(8, 13)}
CATEGORIES = [f"c{j:02d}" for j in range(CARDINALITY)]
EVIDENTLY_VENV = Path(os.environ.get("EVIDENTLY_VENV", "/work/bench-venvs/evidently"))
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas<3"]  # evidently 0.7.23 imports a pandas<3 API
P_VALUE_METHODS = {"ks", "chisquare", "z", "t_test", "anderson", "fisher_exact", "cramer_von_mises", "mannw", "g_test"}


# --------------------------------------------------------------------------------------------
# Data


def make_data(rows: int, seed: int = 2026) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Reference and current columns; categorical columns are int codes into CATEGORIES."""
    rng = np.random.default_rng(seed)
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for i in range(N_NUM):
        family = i % 4
        draw = {
            0: lambda n: rng.normal(0.0, 1.0, n),
            1: lambda n: rng.lognormal(0.0, 0.5, n),
            2: lambda n: rng.uniform(-2.0, 2.0, n),
            3: lambda n: rng.exponential(1.0, n),
        }[family]
        r = draw(rows)
        c = draw(rows)
        std = float(r.std())
        name = f"num{i}"
        if name in DRIFTED:
            c = c + 0.3 * std if i % 2 == 0 else (c - c.mean()) * 1.5 + c.mean()
        elif name in NEGLIGIBLE:
            c = c + 0.01 * std
        ref[name] = r
        cur[name] = c
    base = np.full(CARDINALITY, 1.0 / CARDINALITY)
    skew = np.linspace(0.5, 1.5, CARDINALITY)
    skew /= skew.sum()
    for i in range(N_CAT):
        name = f"cat{i}"
        ref[name] = rng.choice(CARDINALITY, rows, p=base).astype(np.int32)
        cur[name] = rng.choice(CARDINALITY, rows, p=skew if name in DRIFTED else base).astype(np.int32)
    return ref, cur


def data_bytes(frame: dict[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in frame.values())


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, the peak resident set size."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------------------------
# Engines (each runs in a worker process)


def run_modelops(rows: int, repeat: int, mode: str, workers: int) -> dict[str, Any]:
    from modelops.api.driftmonitor import DriftSettings, FeatureTest
    from modelops.drift import CategoricalColumn, build_profile, compute_drift

    ref_raw, cur_raw = make_data(rows)
    cats = tuple(CATEGORIES)

    def frame(raw: dict[str, np.ndarray]) -> dict[str, Any]:
        return {k: (CategoricalColumn(v, cats) if k.startswith("cat") else v) for k, v in raw.items()}

    ref, cur = frame(ref_raw), frame(cur_raw)
    settings = DriftSettings()
    if mode == "ks":
        tests = [FeatureTest(name=k, method="ks" if k.startswith("num") else "chi2") for k in ref]
        settings = DriftSettings(features=tests)
    reference: Any = ref
    if mode == "cached":
        reference = build_profile(ref, workers=workers)
        # A cached check holds the profile, not the training set: drop it and restart the peak.
        del ref, ref_raw
        reset_peak_rss()
    times = []
    report = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = compute_drift(reference, cur, settings, workers=workers)
        times.append(time.perf_counter() - t0)
    assert report is not None
    return {
        "times": times,
        "flagged": sorted(f.name for f in report.features if f.drifted),
        "ks": {f.name: f.statistic for f in report.features if f.test == "ks"},
        "tests": sorted({f.test for f in report.features}),
        "data_bytes": data_bytes(cur_raw) * 2,  # reference and current have the same shape
    }


def run_scipy(rows: int, repeat: int) -> dict[str, Any]:
    from scipy import stats

    ref, cur = make_data(rows)

    def loop() -> tuple[list[str], dict[str, float]]:
        flagged: list[str] = []
        ks: dict[str, float] = {}
        for name in ref:
            r, c = ref[name], cur[name]
            if name.startswith("num"):
                res = stats.ks_2samp(r, c)
                ks[name] = float(res.statistic)
                edges = np.quantile(r, np.linspace(0, 1, 11))
                edges[0], edges[-1] = -np.inf, np.inf
                p = np.histogram(r, edges)[0] / r.size
                q = np.histogram(c, edges)[0] / c.size
                p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
                _psi = float(np.sum((q - p) * np.log(q / p)))
                if res.pvalue < 0.05:
                    flagged.append(name)
            else:
                table = np.vstack([np.bincount(r, minlength=CARDINALITY), np.bincount(c, minlength=CARDINALITY)])
                if stats.chi2_contingency(table).pvalue < 0.05:
                    flagged.append(name)
        return flagged, ks

    times = []
    flagged: list[str] = []
    ks: dict[str, float] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        flagged, ks = loop()
        times.append(time.perf_counter() - t0)
    return {"times": times, "flagged": sorted(flagged), "ks": ks, "data_bytes": data_bytes(ref) + data_bytes(cur)}


def run_evidently(rows: int, repeat: int, mode: str) -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref_raw, cur_raw = make_data(rows)

    def frame(raw: dict[str, np.ndarray]) -> pd.DataFrame:
        return pd.DataFrame(
            {k: (pd.Categorical.from_codes(v, CATEGORIES) if k.startswith("cat") else v) for k, v in raw.items()}
        )

    ref, cur = frame(ref_raw), frame(cur_raw)
    definition = DataDefinition(
        numerical_columns=[c for c in ref if c.startswith("num")],
        categorical_columns=[c for c in ref if c.startswith("cat")],
    )
    preset = DataDriftPreset(num_method="ks", cat_method="chisquare") if mode == "ks" else DataDriftPreset()
    times = []
    metrics: list[dict[str, Any]] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        snapshot = Report([preset]).run(
            Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
        )
        metrics = snapshot.dict()["metrics"]
        times.append(time.perf_counter() - t0)
    flagged = []
    tests = set()
    for m in metrics:
        cfg = m.get("config", {})
        if not cfg.get("type", "").endswith("ValueDrift"):
            continue
        tests.add(cfg["method"])
        value, threshold = float(m["value"]), float(cfg["threshold"])
        drifted = value < threshold if cfg["method"] in P_VALUE_METHODS else value >= threshold
        if drifted:
            flagged.append(cfg["column"])
    return {
        "times": times,
        "flagged": sorted(flagged),
        "tests": sorted(tests),
        "data_bytes": int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()),
    }


def worker(args: argparse.Namespace) -> None:
    engine, mode = args.worker.split(":", 1) if ":" in args.worker else (args.worker, "default")
    if engine == "modelops":
        result = run_modelops(args.rows[0], args.repeat, mode, args.threads)
    elif engine == "scipy":
        result = run_scipy(args.rows[0], args.repeat)
    else:
        result = run_evidently(args.rows[0], args.repeat, mode)
    result["peak_rss"] = peak_rss()
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Orchestration


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} (Evidently stays out of the main environment)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


def load_average() -> float:
    return os.getloadavg()[0]


def spawn(python: str, engine: str, rows: int, repeat: int, threads: int) -> dict[str, Any]:
    cmd = [
        python,
        __file__,
        "--worker",
        engine,
        "--rows",
        str(rows),
        "--repeat",
        str(repeat),
        "--threads",
        str(threads),
    ]
    load_before = load_average()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["median"] = statistics.median(result["times"])
    result["load"] = [load_before, load_average()]
    return result


ENGINES = [
    ("evidently:default", "Evidently DataDriftPreset (default tests)"),
    ("evidently:ks", "Evidently DataDriftPreset (KS/chi2 forced)"),
    ("scipy", "scipy loop (ks_2samp, chi2_contingency, numpy PSI)"),
    ("modelops:cold", "modelops cold (raw reference)"),
    ("modelops:cached", "modelops cached (reference profile)"),
    ("modelops:ks", "modelops KS/chi2 forced (cold)"),
]


def versions(evidently_python: Path | None) -> dict[str, str]:
    import scipy

    out = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    try:
        from modelops import __version__

        out["modelops"] = __version__
    except ImportError:  # pragma: no cover
        pass
    if evidently_python is not None:
        probe = "import evidently, pandas; print(evidently.__version__, pandas.__version__)"
        got = subprocess.run([str(evidently_python), "-c", probe], capture_output=True, text=True, check=False)
        if got.returncode == 0:
            ev, pd_version = got.stdout.split()
            out["evidently"] = ev
            out["pandas (evidently venv)"] = pd_version
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine (median reported)")
    parser.add_argument("--slow-repeat", type=int, default=1, help="runs for engines slower than 10 s")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="modelops worker threads")
    parser.add_argument("--skip", nargs="*", default=[], help="engines to skip, e.g. evidently:ks")
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    evidently_python: Path | None = None
    if not all(e in args.skip for e, _ in ENGINES if e.startswith("evidently")):
        evidently_python = ensure_evidently()
    results: dict[str, Any] = {
        "versions": versions(evidently_python),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "runs": {},
    }
    for rows in args.rows:
        for engine, label in ENGINES:
            if engine in args.skip:
                continue
            python = str(evidently_python) if engine.startswith("evidently") else sys.executable
            slow = (engine.startswith("evidently") and rows >= 100_000) or (engine == "scipy" and rows >= 1_000_000)
            repeat = args.slow_repeat if slow else args.repeat
            print(f"{rows:>9,} rows  {label} ...", file=sys.stderr, flush=True)
            result = spawn(python, engine, rows, repeat, args.threads)
            results["runs"][f"{rows}:{engine}"] = result
            if "error" in result:
                print(f"          error: {result['error']}", file=sys.stderr)
            else:
                print(
                    f"          {result['median']:.3f} s  rss {result['peak_rss'] / 2**20:.0f} MiB  "
                    f"flags {len(result['flagged'])}  load {result['load'][0]:.2f}",
                    file=sys.stderr,
                )
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
    print(render_markdown(results, args.rows))


def render_markdown(results: dict[str, Any], rows_list: list[int]) -> str:
    truth = DRIFTED
    lines = [
        "| rows | engine | median s | peak RSS MiB | RSS / data | flagged (true / false) | load avg |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    for rows in rows_list:
        for engine, label in ENGINES:
            r = results["runs"].get(f"{rows}:{engine}")
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {rows:,} | {label} | error: {r['error'][:60]} | | | | |")
                continue
            flagged = set(r["flagged"])
            lines.append(
                f"| {rows:,} | {label} | {r['median']:.3f} | {r['peak_rss'] / 2**20:.0f} | "
                f"{r['peak_rss'] / max(r['data_bytes'], 1):.2f} | {len(flagged & truth)} / {len(flagged - truth)} | "
                f"{r['load'][0]:.2f}-{r['load'][1]:.2f} |"
            )
    lines.append("")
    for rows in rows_list:
        runs = results["runs"]

        def med(engine: str, rows: int = rows, runs: dict[str, Any] = runs) -> float | None:
            r = runs.get(f"{rows}:{engine}")
            return None if r is None or "error" in r else float(r["median"])

        ours = med("modelops:cold")
        cached = med("modelops:cached")
        parts = []
        for engine, name in (
            ("evidently:default", "Evidently default"),
            ("evidently:ks", "Evidently KS"),
            ("scipy", "scipy loop"),
        ):
            other = med(engine)
            if other is not None and ours is not None and cached is not None:
                parts.append(f"{other / ours:.0f}x / {other / cached:.0f}x vs {name}")
        ks_ours = runs.get(f"{rows}:modelops:ks", {}).get("ks")
        ks_scipy = runs.get(f"{rows}:scipy", {}).get("ks")
        if ks_ours and ks_scipy:
            diff = max(abs(ks_ours[k] - ks_scipy[k]) for k in ks_scipy)
            parts.append(f"max |KS ours - scipy| = {diff:.1e}")
        if parts:
            lines.append(f"- {rows:,} rows, modelops cold / cached speed-up: " + "; ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
