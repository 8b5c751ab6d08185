"""`modelops sandbox up` / `down` times and the sandbox's CPU while idle with two model server pods.

    python benchmarks/sandbox/bench.py [--runs 3] [--idle 30] [--settle 5] [--out results.json]

Every command is a real process (`modelops sandbox up|status|down`, the installed entry point).
Each run, in a fresh directory:

1. **up**: wall time from spawning `modelops sandbox up --dir DIR` to its exit; then
   `modelops sandbox status -o json` gives the supervisor's own figures: `readySeconds` (from the
   supervisor's start, after its imports, to everything ready), `readyExcludingPrometheusSeconds`
   (the same without waiting for Prometheus' `/-/ready`), `supervisorStartSeconds` (its
   interpreter start and imports) and each component's ready time. "up without waiting for
   Prometheus" = wall time - (readySeconds - readyExcludingPrometheusSeconds).
2. **pods**: a Deployment of the modelops image, 2 replicas of `modelops serve` with the churn
   scikit-learn model from `examples/artifacts/` (a file:// path outside /tmp: each sandbox pod
   has a private /tmp), the probes the operator gives its model servers (readiness every 2 s,
   liveness every 10 s), scraped by Prometheus every 2 s (`up`'s default), and a Service. Time
   from the create to both pods Ready.
3. **idle**: after `--settle` seconds, the CPU time (utime+stime in /proc/<pid>/stat, every
   thread, children not included) of each process over `--idle` seconds, as % of one core: the
   supervisor (one process: API server, workload runner with its kubelet and probes, endpoints
   controllers, service proxy, gateway, Prometheus target writer), the operator, Prometheus and
   each pod. Which processes exist is listed from /proc (the supervisor's session and the pods).
4. **down**: wall time from spawning `modelops sandbox down --dir DIR` to its exit, then a check
   that no process of the sandbox is left (recorded pids, the supervisor's session, every pod
   process found by its TMPDIR, anything with DIR on its command line).

Then, per run, the same `up`/`down` without Prometheus (PATH without the binary): `up`'s wall
time with nothing to wait for but the API server, the runner and the operator.

Prints a Markdown table (median and each run) with the load average, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from modelops.sandbox.cluster.processes import alive, session_members  # noqa: E402
from modelops.sandbox.cluster.supervisor import Layout, pod_processes, read_state, recorded_pids  # noqa: E402

CHURN = ROOT / "examples" / "artifacts" / "churn-v1.joblib"
CHURN_DIGEST = "sha256:02352bf2e446d2ab19cd10135f311e345fff6f2edbd9aeb159bd535f38efc7d6"
TICKS = os.sysconf("SC_CLK_TCK")


def modelops_command() -> list[str]:
    """The installed entry point next to this interpreter (what a user runs), else the module."""
    script = Path(sys.executable).parent / "modelops"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from modelops.cli import main; sys.exit(main())"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    seconds = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stdout}{result.stderr}")
    return seconds, result


def cpu_to_ready(layout: Layout, up_cpu: float) -> dict[str, float | None]:
    """CPU seconds spent until `up` returned, per process (less sensitive to neighbours than wall time)."""
    state = read_state(layout) or {}
    comps = state.get("components") or {}
    out: dict[str, float | None] = {"up command": round(up_cpu, 2)}
    for name, pid in (("supervisor", state.get("pid")), ("operator", comps.get("operator", {}).get("pid")),
                      ("prometheus", comps.get("prometheus", {}).get("pid"))):  # fmt: skip
        ticks = cpu_ticks(pid) if isinstance(pid, int) else None
        out[name] = round(ticks / TICKS, 2) if ticks is not None else None
    return out


def timed_up(cmd: list[str], directory: Path, env: dict[str, str] | None = None) -> tuple[float, dict[str, Any]]:
    """`up`'s wall time, and the CPU seconds each process had used when it returned."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _ = timed([*cmd, "sandbox", "up", "--dir", str(directory)], env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    up_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu_to_ready(Layout(directory), up_cpu)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def api_call(api: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def model_server(image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment and Service: 2 replicas serving the churn model, probes as the operator sets them."""
    container = {
        "name": "server",
        "image": image,
        "args": ["serve", "--model-uri", str(CHURN), "--digest", CHURN_DIGEST, "--name", "churn", "--version", "1",
                 "--track", "stable", "--port", "8080"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 2,
                           "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 6},
    }  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "churn"}},
            "template": {
                "metadata": {
                    "labels": {"app": "churn", "modelops.dev/track": "stable"},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": "8080",
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {"containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "churn", "namespace": "default"},
        "spec": {"selector": {"app": "churn"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return deployment, service


def ready_pods(api: str) -> list[dict[str, Any]]:
    pods = api_call(api, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dchurn")["items"]
    return [
        p for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
    ]  # fmt: skip


def wait(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {within}s: {what}")
        time.sleep(0.1)


def status(cmd: list[str], directory: Path) -> dict[str, Any]:
    _, result = timed([*cmd, "sandbox", "status", "--dir", str(directory), "-o", "json"])
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def leftovers(layout: Layout, pids: list[int], supervisor: int) -> list[str]:
    left = {p for p in pids if alive(p)} | set(session_members(supervisor)) | set(pod_processes(layout))
    left |= {int(e.name) for e in os.scandir("/proc") if e.name.isdigit() and str(layout.root) in cmdline(int(e.name))}
    left.discard(os.getpid())
    return [f"{p} {cmdline(p)[:80]}" for p in sorted(left) if alive(p)]


def one_run(cmd: list[str], idle: float, settle: float) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="sandbox-bench-")) / "cluster"
    layout = Layout(directory)
    run: dict[str, Any] = {"loadBefore": loadavg()}
    run["upSeconds"], run["cpuSecondsToReady"] = timed_up(cmd, directory)
    report = status(cmd, directory)
    components = {c["name"]: c for c in report["components"]}
    run["readySeconds"] = report["readySeconds"]
    run["readyExcludingPrometheusSeconds"] = report["readyExcludingPrometheusSeconds"]
    run["supervisorStartSeconds"] = report["supervisorStartSeconds"]
    run["prometheusWaitSeconds"] = round(report["readySeconds"] - report["readyExcludingPrometheusSeconds"], 2)
    run["upExcludingPrometheusSeconds"] = round(run["upSeconds"] - run["prometheusWaitSeconds"], 2)
    run["componentReadySeconds"] = {n: c.get("readySeconds") for n, c in components.items()}
    try:
        api = components["apiserver"]["url"]
        state = read_state(layout)
        assert state is not None
        deployment, service = model_server(state["image"])
        began = time.monotonic()
        api_call(api, "POST", "/apis/apps/v1/namespaces/default/deployments", deployment)
        api_call(api, "POST", "/api/v1/namespaces/default/services", service)
        wait(lambda: len(ready_pods(api)) == 2, 60, "two ready model server pods")
        run["podsReadySeconds"] = round(time.monotonic() - began, 2)
        time.sleep(settle)
        supervisor = int(report["pid"])
        census: dict[str, list[int]] = {
            "supervisor": [supervisor],
            "operator": [components["operator"]["pid"]],
            "prometheus": [components["prometheus"]["pid"]] if components["prometheus"].get("pid") else [],
        }
        pods = pod_processes(layout)
        census["pods"] = sorted(pods)
        others = [p for p in session_members(supervisor) if p not in {pid for ps in census.values() for pid in ps}]
        census["other processes in the supervisor's session"] = others
        run["processes"] = {name: [f"{p} {cmdline(p)[:100]}" for p in pids] for name, pids in census.items()}
        run["loadIdleStart"] = loadavg()
        start = {p: cpu_ticks(p) for ps in census.values() for p in ps}
        t0 = time.monotonic()
        time.sleep(idle)
        elapsed = time.monotonic() - t0
        end = {p: cpu_ticks(p) for p in start}
        run["loadIdleEnd"] = loadavg()
        run["idleSeconds"] = round(elapsed, 2)

        def percent(pids: list[int]) -> float | None:
            used = 0
            for p in pids:
                a, b = start[p], end[p]
                if a is None or b is None:
                    return None  # gone during the window
                used += b - a
            return round(used / TICKS / elapsed * 100, 2) if pids else None

        run["idleCpuPercent"] = {
            "supervisor": percent(census["supervisor"]),
            "operator": percent(census["operator"]),
            "prometheus": percent(census["prometheus"]),
            "pods (each)": [percent([p]) for p in census["pods"]],
        }
        assert len(ready_pods(api)) == 2, "a pod stopped being ready while idle"
    finally:
        state = read_state(layout)
        pids = recorded_pids(layout, state)
        supervisor = int(state["pid"]) if state else 0
        run["downSeconds"], down = timed([*cmd, "sandbox", "down", "--dir", str(directory)])
        run["downOutput"] = down.stdout.strip()
        run["leftAfterDown"] = leftovers(layout, pids, supervisor)
    run["loadAfter"] = loadavg()
    keep_slow_logs(directory, run)
    shutil.rmtree(directory.parent, ignore_errors=True)
    return run


def run_without_prometheus(cmd: list[str]) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="sandbox-bench-noprom-")) / "cluster"
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "prometheus").exists()]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    run: dict[str, Any] = {"loadBefore": loadavg()}
    run["upSeconds"], run["cpuSecondsToReady"] = timed_up(cmd, directory, env)
    report = status(cmd, directory)
    run["readySeconds"] = report["readySeconds"]
    run["supervisorStartSeconds"] = report["supervisorStartSeconds"]
    run["componentReadySeconds"] = {c["name"]: c.get("readySeconds") for c in report["components"]}
    state = read_state(Layout(directory))
    pids = recorded_pids(Layout(directory), state)
    run["downSeconds"], _ = timed([*cmd, "sandbox", "down", "--dir", str(directory)])
    run["leftAfterDown"] = leftovers(Layout(directory), pids, int(report["pid"]))
    keep_slow_logs(directory, run)
    shutil.rmtree(directory.parent, ignore_errors=True)
    return run


def keep_slow_logs(directory: Path, run: dict[str, Any], slow: float = 8.0) -> None:
    """An `up` slower than `slow` seconds keeps its logs (the run's directory is removed otherwise)."""
    if run["upSeconds"] > slow:
        kept = Path(tempfile.mkdtemp(prefix="sandbox-bench-slow-"))
        shutil.copytree(directory / "logs", kept / "logs")
        run["slowLogs"] = str(kept / "logs")


def med(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0, help="idle window in seconds (default 30)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the pods are ready, before it")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("needs the prometheus binary (apt-get install prometheus)")
    cmd = modelops_command()
    runs, bare = [], []
    for i in range(args.runs):
        runs.append(one_run(cmd, args.idle, args.settle))
        print(f"run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
        bare.append(run_without_prometheus(cmd))
        print(f"run {i + 1} without Prometheus: {json.dumps(bare[-1])}", file=sys.stderr, flush=True)
    prom = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=False)
    results = {
        "command": " ".join(["python", "benchmarks/sandbox/bench.py", *sys.argv[1:]]),
        "modelops": cmd,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "prometheus": (prom.stdout or prom.stderr).splitlines()[0] if prom.returncode == 0 else None,
        },
        "idleWindowSeconds": args.idle,
        "runs": runs,
        "withoutPrometheus": bare,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    def col(key: str, rows: list[dict[str, Any]]) -> str:
        values = [float(r[key]) for r in rows]
        return f"{med(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"

    def cpu(key: str) -> str:
        values = [float(r["idleCpuPercent"][key]) for r in runs if r["idleCpuPercent"][key] is not None]
        return f"{med(values):.2f} % ({', '.join(f'{v:.2f}' for v in values)})" if values else "-"

    pods = [v for r in runs for v in r["idleCpuPercent"]["pods (each)"] if v is not None]
    print("| measure | median (each run) |")
    print("|---|---:|")
    print(f"| `up` wall time, spawn to exit | {col('upSeconds', runs)} |")
    print(
        f"| `up` without waiting for Prometheus (wall - Prometheus' part) | {col('upExcludingPrometheusSeconds', runs)} |"
    )
    print(
        f"| Prometheus' part (readySeconds - readyExcludingPrometheusSeconds) | {col('prometheusWaitSeconds', runs)} |"
    )
    print(f"| supervisor: ready, excluding Prometheus (status) | {col('readyExcludingPrometheusSeconds', runs)} |")
    print(f"| supervisor: its own interpreter start and imports (status) | {col('supervisorStartSeconds', runs)} |")
    print(f"| `up` wall time, no Prometheus binary | {col('upSeconds', bare)} |")
    print(f"| two model server pods Ready after the create | {col('podsReadySeconds', runs)} |")
    print(f"| idle CPU, supervisor process (API server, runner, proxy, gateway) | {cpu('supervisor')} |")
    print(f"| idle CPU, operator process | {cpu('operator')} |")
    print(f"| idle CPU, Prometheus process | {cpu('prometheus')} |")
    print(f"| idle CPU, each model server pod | {med(pods):.2f} % ({', '.join(f'{v:.2f}' for v in pods)}) |")
    for name in ("up command", "supervisor", "operator", "prometheus"):
        values = [r["cpuSecondsToReady"][name] for r in runs if r["cpuSecondsToReady"][name] is not None]
        print(f"| CPU seconds until `up` returned, {name} | {med(values):.2f} s ({', '.join(map(str, values))}) |")
    print(f"| `down` wall time, spawn to exit (two pods) | {col('downSeconds', runs)} |")
    print(f"| `down` wall time, no Prometheus, no pods | {col('downSeconds', bare)} |")
    left = [x for r in runs + bare for x in r["leftAfterDown"]]
    print(f"\nprocesses left after down: {left or 'none'}")
    print("load average (1/5/15 min) before each run: " + "; ".join(" ".join(map(str, r["loadBefore"])) for r in runs))
    print("load average during idle windows: " + "; ".join(
        f"{r['loadIdleStart'][0]}->{r['loadIdleEnd'][0]}" for r in runs))  # fmt: skip
    print(f"wrote {args.out}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
