"""The operator at scale: reconcile latency, RSS and CPU with thousands of live objects.

Run from the repo root:  python benchmarks/operator/bench.py [--versions 1000] [--deployments 100]

The sandbox API server runs in this process (its own thread and loop); the operator is a real
`modelops run` process, so its RSS and CPU are its own. Three figures, labelled:

- handler time (in-process): `modelops_reconcile_duration_seconds` from the operator's /metrics,
  p50/p99 interpolated within histogram buckets, per kind;
- end to end (whole system): after everything has settled, one object at a time is changed and
  the time until its status reflects the change is measured from this process (HTTP, watch
  delivery, kopf queueing, the handler, the status patch);
- cost per object: operator RSS and CPU seconds at each population step, so linearity shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from modelops.sandbox import ServerThread  # noqa: E402
from tests.support.operator_process import free_port, start_operator, stop  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kube_player import DeploymentPlayer, RolloutWatch  # noqa: E402

GROUP = "/apis/modelops.dev/v1alpha1/namespaces/default"
TICK = os.sysconf("SC_CLK_TCK")


def http(method: str, url: str, body: Any = None, content_type: str = "application/json") -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def model_version(name: str, uri: str, digest: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": f"bench-{int(name.rsplit('-', 1)[1]) % 100}",
            "version": name.rsplit("-", 1)[1],
            "artifact": {"uri": uri, "digest": digest, "format": "joblib"},
        },
    }


def steps(pause_s: float) -> list[dict[str, Any]]:
    """setWeight 20, a timed pause (its end is measured), setWeight 40, then an hour's pause: the
    state a canary spends its life in, with nothing changing."""
    return [
        {"setWeight": 20},
        {"pause": {"duration": f"{pause_s:g}s"}},
        {"setWeight": 40},
        {"pause": {"duration": "1h"}},
    ]


def model_deployment(name: str, model: dict[str, Any], pause_s: float) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, "replicas": 1, "strategy": {"canary": {"steps": steps(pause_s)}}},
    }


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds user+system) of a live process."""
    rss_kib = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss_kib / 1024, (int(fields[11]) + int(fields[12])) / TICK


def histogram_buckets(text: str, kind: str) -> dict[float, float]:
    """Cumulative bucket counts of modelops_reconcile_duration_seconds{kind}, summed over results."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("modelops_reconcile_duration_seconds_bucket") and f'kind="{kind}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def quantiles(buckets: dict[float, float]) -> dict[str, float]:
    """p50/p99 (seconds, interpolated within buckets) and count."""
    if not buckets or not buckets[max(buckets)]:
        return {"count": 0.0}
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]

    def quantile(q: float) -> float:
        rank = q * total
        prev_bound, prev_count = 0.0, 0.0
        for b in bounds:
            if buckets[b] >= rank:
                if b == float("inf"):
                    return prev_bound
                span = buckets[b] - prev_count
                return prev_bound + (b - prev_bound) * ((rank - prev_count) / span if span else 1.0)
            prev_bound, prev_count = b, buckets[b]
        return prev_bound

    return {"count": total, "p50": quantile(0.5), "p99": quantile(0.99)}


def histogram_quantiles(text: str, kind: str) -> dict[str, float]:
    return quantiles(histogram_buckets(text, kind))


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _observed(o: dict[str, Any]) -> bool:
    return (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")


def _phase(o: dict[str, Any]) -> str | None:
    return (o.get("status") or {}).get("phase")


def _step(o: dict[str, Any]) -> int | None:
    return (o.get("status") or {}).get("currentStepIndex")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4, help="population steps (linearity)")
    parser.add_argument("--probes", type=int, default=50, help="one-at-a-time changes timed end to end")
    parser.add_argument(
        "--pods",
        choices=("ready", "unready", "none"),
        default="ready",
        help="ready: the benchmark plays the Deployment controller and pods get ready; unready: the "
        "controller observes every Deployment but no pod ever gets ready (every rollout stuck "
        "Progressing); none: no controller at all",
    )
    parser.add_argument("--ready-after", type=float, default=0.5, help="seconds from a new generation to ready pods")
    parser.add_argument("--pause", type=float, default=20.0, help="the timed pause whose end is measured (s)")
    parser.add_argument("--window", type=float, default=30.0, help="quiet window measured with every rollout live (s)")
    parser.add_argument("--quiet-after", type=float, default=35.0, help="wait this long after the rollouts settled (s)")
    parser.add_argument("--by-model", type=int, default=0, help="how many deployments track spec.model.modelName")
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args()
    if args.versions < 2 * args.deployments or args.by_model > min(100, args.deployments):
        parser.error("need --versions >= 2 x --deployments and --by-model <= min(100, --deployments)")

    results: dict[str, Any] = {
        "versions": args.versions,
        "deployments": args.deployments,
        "pods": args.pods,
        "ready_after_s": args.ready_after,
        "pause_s": args.pause,
        "by_model": args.by_model,
        "load_start": os.getloadavg(),
        "steps": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp,
        ServerThread(port=0, crds=[ROOT / "crds"]) as server,
    ):
        artifact = Path(tmp) / "model.joblib"
        artifact.write_bytes(b"bench-model" * 100)
        digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
        kubeconfig = str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
        metrics_port = free_port()
        op = start_operator(kubeconfig, Path(tmp) / "operator.log", metrics_port=metrics_port)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        player = DeploymentPlayer(server.url, "default", args.pods, args.ready_after).start()
        rollouts = RolloutWatch(server.url, "default").start()
        wait_until(lambda: _up(metrics_url), 30)
        time.sleep(1.0)
        rss0, cpu0 = proc_stats(op.pid)
        results["idle"] = {"rss_mib": rss0, "cpu_s": cpu0}
        try:
            created = 0
            per_step = args.versions // args.steps
            for step in range(1, args.steps + 1):
                target = per_step * step if step < args.steps else args.versions
                t0 = time.perf_counter()
                while created < target:
                    created += 1
                    http(
                        "POST",
                        f"{server.url}{GROUP}/modelversions",
                        model_version(f"mv-{created}", artifact.as_uri(), digest),
                    )
                settled = wait_until(
                    lambda t=target: _count_phase(server.url, "modelversions", "Verified") >= t, 600, 0.5
                )
                rss, cpu = proc_stats(op.pid)
                results["steps"].append(
                    {
                        "versions": target,
                        "settle_s": time.perf_counter() - t0,
                        "settled": settled,
                        "rss_mib": rss,
                        "cpu_s": cpu,
                    }
                )
                print(
                    f"{target} ModelVersions verified={settled} in {time.perf_counter() - t0:.1f}s  RSS {rss:.0f} MiB  CPU {cpu:.1f}s",
                    flush=True,
                )
            md_settled = None
            n = args.deployments
            if n:
                md_settled = _deploy(server.url, args, rollouts, results, op.pid)
                if md_settled:
                    _roll_out(server.url, args, rollouts, results, op.pid, artifact.as_uri(), digest)
                    time.sleep(args.quiet_after)
                    _quiet_window(metrics_url, args.window, results, op.pid)
            # End to end, one change at a time, with everything live.
            before_probes = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
            e2e: list[float] = []
            for i in range(1, args.probes + 1):
                name = f"mv-{i}"
                t0 = time.perf_counter()
                http("PATCH", f"{server.url}{GROUP}/modelversions/{name}", {"spec": {"stage": "Staging"}},
                     "application/merge-patch+json")  # fmt: skip
                if wait_until(
                    lambda n=name: _get(server.url, "modelversions", n)["status"].get("stage") == "Staging", 30, 0.002
                ):
                    e2e.append(time.perf_counter() - t0)
            results["e2e_mv_s"] = e2e
            md_e2e: list[float] = []
            if md_settled:
                for i in range(1, min(args.probes, args.deployments) + 1):
                    name = f"md-{i}"
                    obj = http("PATCH", f"{server.url}{GROUP}/modeldeployments/{name}", {"spec": {"replicas": 2}},
                               "application/merge-patch+json")  # fmt: skip
                    gen = obj["metadata"]["generation"]
                    t0 = time.perf_counter()
                    if wait_until(
                        lambda n=name, g=gen: (
                            _get(server.url, "modeldeployments", n).get("status", {}).get("observedGeneration") == g
                        ),
                        30,
                        0.002,
                    ):
                        md_e2e.append(time.perf_counter() - t0)
            results["e2e_md_s"] = md_e2e
            text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
            results["handler"] = {
                k: histogram_quantiles(text, k) for k in ("ModelVersion", "ModelDeployment", "DriftMonitor")
            }
            results["handler_probes"] = {
                k: quantiles(_bucket_delta(before_probes, text, k)) for k in ("ModelVersion", "ModelDeployment")
            }
            rss, cpu = proc_stats(op.pid)
            results["final"] = {"rss_mib": rss, "cpu_s": cpu}
            results["deployment_status_patches"] = player.patches
            results["load_end"] = os.getloadavg()
        finally:
            player.stop()
            rollouts.stop()
            stop(op)
    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _version_model(i: int, args: argparse.Namespace) -> dict[str, Any]:
    """Deployments 1..by_model track the newest stage-None version of model bench-i (no approval
    required); the others name mv-i."""
    if i <= args.by_model:
        return {"modelName": f"bench-{i % 100}", "stage": "None", "requireApproval": False}
    return {"versionRef": f"mv-{i}"}


def _deploy(base: str, args: argparse.Namespace, rollouts: RolloutWatch, results: dict[str, Any], pid: int) -> bool:
    """Create the ModelDeployments; settled when every one is observed (and Healthy when pods get ready)."""
    n, t0 = args.deployments, time.perf_counter()
    for i in range(1, n + 1):
        http(
            "POST", f"{base}{GROUP}/modeldeployments", model_deployment(f"md-{i}", _version_model(i, args), args.pause)
        )

    def done() -> bool:
        if args.pods == "ready":
            return rollouts.count(lambda o: _observed(o) and _phase(o) == "Healthy") >= n
        return rollouts.count(_observed) >= n

    settled = wait_until(done, 600, 0.1)
    rss, cpu = proc_stats(pid)
    results["deployments_step"] = {
        "settle_s": time.perf_counter() - t0,
        "settled": settled,
        "rss_mib": rss,
        "cpu_s": cpu,
    }
    print(f"{n} ModelDeployments settled={settled} in {time.perf_counter() - t0:.1f}s  RSS {rss:.0f} MiB  CPU {cpu:.1f}s",
          flush=True)  # fmt: skip
    return settled


def _roll_out(
    base: str,
    args: argparse.Namespace,
    rollouts: RolloutWatch,
    results: dict[str, Any],
    pid: int,
    uri: str,
    digest: str,
) -> None:
    """A new version for every deployment at once (versionRef edited; a newer version registered
    for a modelName deployment); settled when every rollout sits in its last, hour-long pause
    (pods ready) or has its canary recorded (pods never ready)."""
    n, t0, wall0 = args.deployments, time.perf_counter(), time.time()
    for i in range(1, n + 1):
        if i <= args.by_model:
            mv = model_version(f"mv-{args.versions + i}", uri, digest)
            mv["spec"]["modelName"] = f"bench-{i % 100}"
            http("POST", f"{base}{GROUP}/modelversions", mv)
        else:
            http("PATCH", f"{base}{GROUP}/modeldeployments/md-{i}", {"spec": {"model": {"versionRef": f"mv-{n + i}"}}},
                 "application/merge-patch+json")  # fmt: skip

    def done() -> bool:
        if args.pods == "ready":
            return rollouts.count(lambda o: _step(o) == 3) >= n
        return rollouts.count(lambda o: _observed(o) and bool((o.get("status") or {}).get("canaryVersion"))) >= n

    settled = wait_until(done, args.pause + 600, 0.1)
    rss, cpu = proc_stats(pid)
    late: list[float] = []
    if args.pods == "ready":
        for i in range(1, n + 1):
            name = f"md-{i}"
            started = rollouts.pause_started.get((name, 1))
            after = [t for (m, s), t in rollouts.first_at_step.items() if m == name and s >= 2 and t >= wall0]
            if started and after:
                due = dt.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() + args.pause
                late.append(min(after) - due)
    results["rollout_step"] = {
        "settle_s": time.perf_counter() - t0,
        "settled": settled,
        "rss_mib": rss,
        "cpu_s": cpu,
        "pause_late_s": late,
    }
    print(f"{n} rollouts settled={settled} in {time.perf_counter() - t0:.1f}s  RSS {rss:.0f} MiB  CPU {cpu:.1f}s",
          flush=True)  # fmt: skip


def _quiet_window(metrics_url: str, window: float, results: dict[str, Any], pid: int) -> None:
    """Every rollout live and nothing changing: what the operator does on its own."""
    before = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    _, cpu0 = proc_stats(pid)
    time.sleep(window)
    after = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    rss, cpu1 = proc_stats(pid)
    q = quantiles(_bucket_delta(before, after, "ModelDeployment"))
    results["quiet_window"] = {
        "seconds": window,
        "reconciles": q.get("count", 0.0),
        "handler": q,
        "cpu_s": cpu1 - cpu0,
        "rss_mib": rss,
    }
    print(f"quiet {window:.0f}s: {q.get('count', 0):.0f} reconciles, operator CPU {cpu1 - cpu0:.1f}s", flush=True)


def _bucket_delta(before: str, after: str, kind: str) -> dict[float, float]:
    """The handler-time histogram of what happened between two scrapes."""
    b0, b1 = histogram_buckets(before, kind), histogram_buckets(after, kind)
    return {le: b1[le] - b0.get(le, 0.0) for le in b1}


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def _get(base: str, plural: str, name: str) -> dict[str, Any]:
    return http("GET", f"{base}{GROUP}/{plural}/{name}")  # type: ignore[no-any-return]


def _count_phase(base: str, plural: str, phase: str) -> int:
    items = http("GET", f"{base}{GROUP}/{plural}")["items"]
    return sum(1 for o in items if (o.get("status") or {}).get("phase") == phase)


def _ms(xs: list[float]) -> str:
    return f"{len(xs)} | {1000 * statistics.median(xs):.1f} | {1000 * pct(xs, 0.99):.1f}"


def _report(r: dict[str, Any]) -> None:
    print(f"\npods: {r['pods']}, {r['deployments']} ModelDeployments ({r['by_model']} by modelName)")
    load = (
        ", ".join(f"{a:.1f}" for a in r.get("load_start", ()))
        + " -> "
        + ", ".join(f"{a:.1f}" for a in r.get("load_end", ()))
    )
    print(f"load average (1, 5, 15 min): {load}")
    print("\n| population | settle (s) | operator RSS (MiB) | operator CPU (s, cumulative) |")
    print("|---|---:|---:|---:|")
    print(f"| idle (0 objects) | - | {r['idle']['rss_mib']:.0f} | {r['idle']['cpu_s']:.1f} |")
    for s in r["steps"]:
        print(f"| {s['versions']} MV | {s['settle_s']:.1f} | {s['rss_mib']:.0f} | {s['cpu_s']:.1f} |")
    for key, label in (("deployments_step", "MD created"), ("rollout_step", "rollouts started")):
        if key in r:
            d = r[key]
            print(f"| + {r['deployments']} {label} | {d['settle_s']:.1f} | {d['rss_mib']:.0f} | {d['cpu_s']:.1f} |")
    if "quiet_window" in r:
        w = r["quiet_window"]
        rate = w["reconciles"] / w["seconds"]
        print(f"\nquiet window {w['seconds']:.0f} s: {w['reconciles']:.0f} ModelDeployment reconciles "
              f"({rate:.1f}/s), operator CPU {w['cpu_s']:.1f} s ({100 * w['cpu_s'] / w['seconds']:.0f}% of a core)")  # fmt: skip
    print("\n| latency | n | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|")
    for kind, h in r["handler"].items():
        if h.get("count"):
            print(f"| handler time (in-process), {kind}, whole run | {h['count']:.0f} | {1000 * h['p50']:.1f} | {1000 * h['p99']:.1f} |")  # fmt: skip
    if (r.get("quiet_window") or {}).get("handler", {}).get("count"):
        h = r["quiet_window"]["handler"]
        print(f"| handler time (in-process), ModelDeployment, quiet window | {h['count']:.0f} | {1000 * h['p50']:.1f} | {1000 * h['p99']:.1f} |")  # fmt: skip
    for kind, h in (r.get("handler_probes") or {}).items():
        if h.get("count"):
            print(f"| handler time (in-process), {kind}, during the one-at-a-time probes | {h['count']:.0f} | {1000 * h['p50']:.1f} | {1000 * h['p99']:.1f} |")  # fmt: skip
    late = (r.get("rollout_step") or {}).get("pause_late_s") or []
    if late:
        print(f"| end to end (whole system), timed pause end -> next step in status | {_ms(late)} |")
    for label, key in (("end to end (whole system), ModelVersion stage change", "e2e_mv_s"),
                       ("end to end (whole system), ModelDeployment spec change", "e2e_md_s")):  # fmt: skip
        xs = r.get(key) or []
        if xs:
            print(f"| {label} | {_ms(xs)} |")
    steps = r["steps"]
    if len(steps) >= 2:
        first, last = steps[0], steps[-1]
        per_obj = (last["rss_mib"] - first["rss_mib"]) / max(1, last["versions"] - first["versions"]) * 1024
        print(f"\nRSS per additional ModelVersion: {per_obj:.1f} KiB")


if __name__ == "__main__":
    raise SystemExit(main())
