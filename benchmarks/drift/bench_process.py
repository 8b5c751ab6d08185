"""`modelops drift check` as a whole process: what a DriftMonitor's CronJob pays on every check.

Usage (from the repository root)::

    python benchmarks/drift/bench_process.py --rows 100000 1000000 --repeat 5 \\
        --before <git revision> --out benchmarks/drift/results-process.json

Data: the in-process benchmark's (bench.py ``make_data``: 50 features, 40 numerical and 10
categorical, ten really drifted), written once into ``--data`` as Parquet (categories dictionary
encoded, as pyarrow writes strings), plus the reference's profile (``modelops drift profile``).
The timed command is what the CronJob runs, minus the cluster::

    modelops drift check --reference profile.npz --current current.parquet --output json -o out.json

started as a fresh interpreter each run (the console script's code: ``from modelops.cli import
main``), so the figure includes interpreter start-up, imports, reading both files, the check and
the output. Wall time, CPU time (user + sys of that process, from wait4) and peak RSS per run;
medians over ``--repeat`` runs. With ``--before REV`` the same runs are made with the package from
a git worktree of REV (created under /tmp), interleaved run by run with the current checkout so
both see the same load, and their JSON outputs are compared feature by feature.

``--stages`` adds one in-process breakdown per variant (imports, reading the reference, reading
the current data, the check itself), timed inside a single process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from bench import CATEGORIES, make_data  # noqa: E402

CLI = "import sys; from modelops.cli import main; sys.exit(main())"
STAGES = """
import json, sys, time
marks = [(time.perf_counter(), time.process_time())]
from modelops.commands.drift import load_config
from modelops.drift.engine import compute_drift
from modelops.drift.readers import load_frame, load_reference
marks.append((time.perf_counter(), time.process_time()))
settings, mapping = load_config(None)
reference = load_reference(sys.argv[1], cache=None)
marks.append((time.perf_counter(), time.process_time()))
current = load_frame(sys.argv[2])
marks.append((time.perf_counter(), time.process_time()))
report = compute_drift(reference, current, settings, mapping)
marks.append((time.perf_counter(), time.process_time()))
names = ("imports", "read reference", "read current", "check")
print(json.dumps({n: {"wall": b[0] - a[0], "cpu": b[1] - a[1]} for n, a, b in zip(names, marks, marks[1:])}))
"""


def write_data(rows: int, folder: Path) -> tuple[Path, Path]:
    """current-<rows>.parquet and profile-<rows>.npz (kept between runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    current = folder / f"current-{rows}.parquet"
    profile = folder / f"profile-{rows}.npz"
    if current.exists() and profile.exists():
        return profile, current
    folder.mkdir(parents=True, exist_ok=True)
    ref, cur = make_data(rows)
    labels = pa.array(CATEGORIES)

    def table(raw: dict[str, np.ndarray]) -> Any:
        return pa.table(
            {
                k: (pa.DictionaryArray.from_arrays(pa.array(v), labels) if k.startswith("cat") else pa.array(v))
                for k, v in raw.items()
            }
        )

    reference = folder / f"reference-{rows}.parquet"
    pq.write_table(table(ref), reference)
    pq.write_table(table(cur), current)
    done = subprocess.run(
        [sys.executable, "-c", CLI, "drift", "profile", str(reference), "-o", str(profile)],
        env=env_for(ROOT / "operator"),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"drift profile failed: {done.stderr}")
    reference.unlink()  # the check reads the profile; the raw reference is not needed again
    return profile, current


def env_for(source: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "KUBECONFIG")}
    env["PYTHONPATH"] = str(source)
    return env


def worktree(rev: str) -> Path:
    """A git worktree of ``rev`` under /tmp (reused when it exists); its source root."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(f"/tmp/modelops-before-{sha}")
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True)
    return path / "operator"


def run_once(source: Path, argv: list[str]) -> dict[str, float]:
    """One fresh process: wall seconds, CPU seconds (user + sys), peak RSS MiB, exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv], env=env_for(source), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}: {stderr[-2000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
        "exit": code,
    }


def stages(source: Path, profile: Path, current: Path) -> dict[str, dict[str, float]]:
    done = subprocess.run(
        [sys.executable, "-c", STAGES, str(profile), str(current)],
        env=env_for(source),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, float]] = json.loads(done.stdout.splitlines()[-1])
    return result


def compare(before: Path, after: Path) -> dict[str, float]:
    """Largest difference per field between two check outputs (same features, same order)."""
    a = {f["name"]: f for f in json.loads(before.read_text())["features"]}
    b = {f["name"]: f for f in json.loads(after.read_text())["features"]}
    assert a.keys() == b.keys(), "the two revisions checked different features"
    worst: dict[str, float] = {}
    for name, fa in a.items():
        fb = b[name]
        assert (fa["test"], fa["drifted"]) == (fb["test"], fb["drifted"]), name
        for key in ("statistic", "pValue"):
            if fa.get(key) is None and fb.get(key) is None:
                continue
            worst[key] = max(worst.get(key, 0.0), abs(fa[key] - fb[key]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default=None, help="git revision to compare with (a worktree under /tmp)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/modelops-bench-drift"))
    parser.add_argument("--stages", action="store_true", help="also time the stages inside one process")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    variants = {"after": ROOT / "operator"}
    if args.before:
        variants = {"before": worktree(args.before), **variants}
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "before": args.before,
        "after": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        + " + working tree",
        "runs": [],
    }
    for rows in args.rows:
        profile, current = write_data(rows, args.data)
        outputs = {name: args.data / f"out-{name}-{rows}.json" for name in variants}
        argv = {
            name: ["drift", "check", "--reference", str(profile), "--current", str(current), "--output", "json",
                   "-o", str(outputs[name])]
            for name in variants
        }  # fmt: skip
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        load = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for name, source in variants.items():  # interleaved: both variants see the same load
                samples[name].append(run_once(source, argv[name]))
        load.append(os.getloadavg()[0])
        entry: dict[str, Any] = {"rows": rows, "load": load}
        for name, runs in samples.items():
            entry[name] = {key: statistics.median(r[key] for r in runs) for key in ("wall", "cpu", "rss_mib")} | {
                "walls": [r["wall"] for r in runs],
                "cpus": [r["cpu"] for r in runs],
            }
            if args.stages:
                entry[name]["stages"] = stages(variants[name], profile, current)
        if "before" in variants:
            entry["max_difference"] = compare(outputs["before"], outputs["after"])
        results["runs"].append(entry)
        print(json.dumps(entry, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print()
    print("| rows | variant | wall s (median) | CPU s (median) | peak RSS MiB | load |")
    print("|---:|---|---:|---:|---:|---:|")
    for entry in results["runs"]:
        for name in variants:
            r = entry[name]
            print(
                f"| {entry['rows']:,} | {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss_mib']:.0f} | "
                f"{entry['load'][0]:.1f}-{entry['load'][1]:.1f} |"
            )


if __name__ == "__main__":
    main()
