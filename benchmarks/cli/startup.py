"""`modelops --help` and `modelops <command> --help`: the time to a first answer, as a process.

Usage (from the repository root)::

    python benchmarks/cli/startup.py --repeat 7 --before <git revision> --out benchmarks/cli/results.json

Each help runs as a fresh interpreter with the console script's code (``from modelops.cli import
main``), so the figure is interpreter start-up plus imports plus argparse. Wall time and CPU time
(user + sys of that process, from wait4) per run; medians over ``--repeat`` runs. With
``--before REV`` the same commands run with the package from a git worktree of REV (created under
/tmp), interleaved run by run with the current checkout so both see the same load. ``python -c
pass`` is measured alongside: the interpreter's own floor on this machine.
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

ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from modelops.cli import main; sys.exit(main())"
COMMANDS = [
    "",
    "crds",
    "run",
    "registry",
    "registry register",
    "rollout",
    "sandbox",
    "demo",
    "drift",
    "drift check",
    "performance",
    "serve",
]


def worktree(rev: str) -> Path:
    """A git worktree of ``rev`` under /tmp (reused when it exists); its source root."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(f"/tmp/modelops-before-{sha}")
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True)
    return path / "operator"


def run_once(source: Path, code: str, argv: list[str]) -> tuple[float, float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "KUBECONFIG")}
    env["PYTHONPATH"] = str(source)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--before", default=None, help="git revision to compare with (a worktree under /tmp)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    variants = {"after": ROOT / "operator"}
    if args.before:
        variants = {"before": worktree(args.before), **variants}
    rows: list[dict[str, Any]] = []
    load = [os.getloadavg()[0]]
    cases = [("python -c pass", "pass", [])] + [
        (f"modelops {c} --help".replace("  ", " "), CLI, [*c.split(), "--help"]) for c in COMMANDS
    ]
    for label, code, argv in cases:
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, source in variants.items():
                samples[name].append(run_once(source, code, argv))
        row: dict[str, Any] = {"command": label}
        for name, runs in samples.items():
            ok = all(rc == 0 for _w, _c, rc in runs)
            row[name] = {
                "wall": statistics.median(w for w, _c, _rc in runs) if ok else None,
                "cpu": statistics.median(c for _w, c, _rc in runs) if ok else None,
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    load.append(os.getloadavg()[0])
    result = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "before": args.before,
        "load": load,
        "repeat": args.repeat,
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    names = list(variants)
    print()
    print("| command | " + " | ".join(f"{n} wall s | {n} CPU s" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    for row in rows:
        cells = []
        for n in names:
            r = row[n]
            cells += [
                "n/a" if r["wall"] is None else f"{r['wall']:.2f}",
                "n/a" if r["cpu"] is None else f"{r['cpu']:.2f}",
            ]
        print(f"| `{row['command']}` | " + " | ".join(cells) + " |")
    print(f"\nload average {load[0]:.1f}-{load[1]:.1f}")


if __name__ == "__main__":
    main()
