"""The operator at scale: reconcile latency, RSS and CPU with thousands of live objects.

Run from the repo root:  python benchmarks/operator/bench.py [--versions 1000] [--deployments 100]

The sandbox API server runs in this process (its own thread and loop); the operator is a real
`modelops run` process, so its RSS and CPU are its own. Three figures, labelled:

- handler time (in-process): `modelops_reconcile_duration_seconds` from the operator's /metrics,
  per kind: p50 interpolated within histogram buckets, p99 as the bucket it falls in;
- end to end (whole system): after everything has settled, one object at a time is changed and
  the time from just before the request until this process's watch delivers a status that
  reflects the change (HTTP, watch delivery, kopf queueing, the handler, the status patch). The
  probes wait on watches: polling would take the API server's interpreter lock, which this
  process shares, from the operator's requests;
- cost per object: operator RSS and CPU seconds at each population step, so linearity shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import shutil
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
from kube_player import DeploymentPlayer, ObjectWatch, RolloutWatch  # noqa: E402

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


def quantiles(buckets: dict[float, float]) -> dict[str, Any]:
    """Count, p50/p99 (seconds, interpolated within buckets), the bucket p99 falls in and the upper
    bound of the highest non-empty bucket (all the histogram knows of the maximum)."""
    if not buckets or not buckets[max(buckets)]:
        return {"count": 0.0}
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]

    def bucket_of(q: float) -> tuple[float, float, float]:
        """(lower bound, upper bound, interpolated value) of the q quantile."""
        rank = q * total
        prev_bound, prev_count = 0.0, 0.0
        for b in bounds:
            if buckets[b] >= rank:
                if b == float("inf"):
                    return prev_bound, b, prev_bound
                span = buckets[b] - prev_count
                return prev_bound, b, prev_bound + (b - prev_bound) * ((rank - prev_count) / span if span else 1.0)
            prev_bound, prev_count = b, buckets[b]
        return prev_bound, prev_bound, prev_bound

    p99_lo, p99_hi, p99 = bucket_of(0.99)
    highest = next(b for b in bounds if buckets[b] >= total)
    return {"count": total, "p50": bucket_of(0.5)[2], "p99": p99, "p99_bucket": [p99_lo, p99_hi], "max_le": highest}


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
    return bool((o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation"))


def _phase(o: dict[str, Any]) -> str | None:
    return (o.get("status") or {}).get("phase")


def _step(o: dict[str, Any]) -> int | None:
    return (o.get("status") or {}).get("currentStepIndex")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4, help="population steps (linearity)")
    parser.add_argument("--probes", type=int, default=100, help="one-at-a-time changes timed end to end, per kind")
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
        versions = ObjectWatch(server.url, "default", "modelversions").start()
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
                settled = wait_until(lambda t=target: versions.count(lambda o: _phase(o) == "Verified") >= t, 600, 0.1)
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
            # The API server stand-in lives in this process: its full garbage collections (up to
            # 0.5 s with 1,000 objects stored, every few seconds) would stall the operator's
            # requests, which a real API server does not. What exists now is never collected.
            gc.freeze()
            md_settled = None
            n = args.deployments
            if n:
                md_settled = _deploy(server.url, args, rollouts, results, op.pid)
                gc.freeze()
                if md_settled:
                    _roll_out(server.url, args, rollouts, results, op.pid, artifact.as_uri(), digest)
                    gc.freeze()
                    time.sleep(args.quiet_after)
                    _quiet_window(metrics_url, args.window, results, op.pid)
            # End to end, one change at a time, with everything live, timed from the watches.
            scrapes = [_scrape(metrics_url)]
            results["e2e_mv_s"] = _probe(
                server.url, versions, [f"mv-{i}" for i in range(1, args.probes + 1)], "modelversions",
                lambda name: {"spec": {"stage": "Staging"}}, lambda o: (o.get("status") or {}).get("stage") == "Staging",
            )  # fmt: skip
            scrapes.append(_scrape(metrics_url))
            # Promotions to Production: each reads its model's versions (10 of the 1,000), fresh.
            first = 2 * args.deployments
            promoted = [f"mv-{i}" for i in range(first + 1, min(args.versions, first + min(args.probes, 100)) + 1)]
            approval = {"approvedBy": "bench", "approvedAt": "2026-01-01T00:00:00Z", "reason": "benchmark"}
            results["e2e_mv_production_s"] = _probe(
                server.url, versions, promoted, "modelversions",
                lambda name: {"spec": {"stage": "Production", "approval": approval}},
                lambda o: (o.get("status") or {}).get("stage") == "Production",
            )  # fmt: skip
            scrapes.append(_scrape(metrics_url))
            md_names = [f"md-{i}" for i in range(1, min(args.probes, args.deployments) + 1)] if md_settled else []
            results["e2e_md_s"] = _probe(
                server.url, rollouts, md_names, "modeldeployments",
                lambda name: {"spec": {"replicas": 2}},
                lambda o: (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
                and (o.get("spec") or {}).get("replicas") == 2,
            )  # fmt: skip
            scrapes.append(_scrape(metrics_url))
            text = scrapes[-1]
            results["handler"] = {
                k: histogram_quantiles(text, k) for k in ("ModelVersion", "ModelDeployment", "DriftMonitor")
            }
            results["handler_probes"] = {
                f"{k}, during the ModelVersion probes": quantiles(_bucket_delta(scrapes[0], scrapes[1], k))
                for k in ("ModelVersion", "ModelDeployment")
            }
            results["handler_probes"]["ModelVersion, during the promotions to Production"] = quantiles(
                _bucket_delta(scrapes[1], scrapes[2], "ModelVersion")
            )
            results["handler_probes"]["ModelDeployment, during the ModelDeployment probes"] = quantiles(
                _bucket_delta(scrapes[2], scrapes[3], "ModelDeployment")
            )
            rss, cpu = proc_stats(op.pid)
            results["final"] = {"rss_mib": rss, "cpu_s": cpu}
            results["deployment_status_patches"] = player.patches
            results["load_end"] = os.getloadavg()
        finally:
            player.stop()
            rollouts.stop()
            versions.stop()
            stop(op)
            if args.json:  # the operator's log beside the raw numbers (warnings, conflicts)
                shutil.copyfile(Path(tmp) / "operator.log", args.json.with_suffix(".operator.log"))
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
    n, t0 = int(args.deployments), time.perf_counter()
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
    n, t0, wall0 = int(args.deployments), time.perf_counter(), time.time()
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
    decided: list[float] = []  # due -> the operator's clock when it moved on (its reconcile's `now`)
    dues: list[float] = []
    if args.pods == "ready":
        for i in range(1, n + 1):
            name = f"md-{i}"
            started = rollouts.pause_started.get((name, 1))
            after = [t for (m, s), t in rollouts.first_at_step.items() if m == name and s >= 2 and t >= wall0]
            stamped = [_ts(t) for (m, s), t in rollouts.step_started.items() if m == name and s >= 2]
            if started and after:
                due = _ts(started) + args.pause
                late.append(min(after) - due)
                dues.append(due)
                if stamped:
                    decided.append(min(stamped) - due)
    results["rollout_step"] = {
        "settle_s": time.perf_counter() - t0,
        "settled": settled,
        "rss_mib": rss,
        "cpu_s": cpu,
        "pause_late_s": late,
        "pause_decided_late_s": decided,
        "pause_due_spread_s": max(dues) - min(dues) if dues else None,
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


def _ts(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _scrape(url: str) -> str:
    return urllib.request.urlopen(url, timeout=10).read().decode()  # type: ignore[no-any-return]


def _probe(
    base: str,
    watch: ObjectWatch,
    names: list[str],
    plural: str,
    patch: Any,
    done: Any,
) -> list[float]:
    """One object at a time: merge-patch it, and time from just before the request until the watch
    delivers a version of it for which ``done`` holds (the next probe starts then)."""
    took = []
    for name in names:
        t0 = time.perf_counter()
        http("PATCH", f"{base}{GROUP}/{plural}/{name}", patch(name), "application/merge-patch+json")
        arrived = watch.wait_for(name, done, t0, 30)
        if arrived is not None:
            took.append(arrived - t0)
    return took


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def _ms(xs: list[float]) -> str:
    """n | p50 | p99 | max of measured samples (p99 is the largest sample when n <= 50)."""
    return f"{len(xs)} | {1000 * statistics.median(xs):.1f} | {1000 * pct(xs, 0.99):.1f} | {1000 * max(xs):.1f}"


def _hist(h: dict[str, Any]) -> str:
    """n | p50 | p99 | max of a histogram: p50 interpolated, p99 as the bucket it falls in (with
    few samples an interpolated p99 is made up), max as the highest non-empty bucket's bound."""
    lo, hi = h["p99_bucket"]
    return f"{h['count']:.0f} | ~{1000 * h['p50']:.1f} | {1000 * lo:g}-{1000 * hi:g} | <= {1000 * h['max_le']:g}"


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
    print("\nhandler time: p50 interpolated within the histogram's buckets, p99 the bucket it falls in, max the")
    print("highest non-empty bucket's bound. End to end: measured samples; p99 is the largest sample when n <= 50,")
    print("the second largest when n = 100.")
    print("\n| latency | n | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---|---:|---:|---:|---:|")
    for kind, h in r["handler"].items():
        if h.get("count"):
            print(f"| handler time (in-process), {kind}, whole run | {_hist(h)} |")
    if (r.get("quiet_window") or {}).get("handler", {}).get("count"):
        print(f"| handler time (in-process), ModelDeployment, quiet window | {_hist(r['quiet_window']['handler'])} |")
    for kind, h in (r.get("handler_probes") or {}).items():
        if h.get("count"):
            print(f"| handler time (in-process), {kind} | {_hist(h)} |")
    late = (r.get("rollout_step") or {}).get("pause_late_s") or []
    if late:
        print(f"| end to end (whole system), timed pause end -> next step in status | {_ms(late)} |")
    decided = (r.get("rollout_step") or {}).get("pause_decided_late_s") or []
    if decided:
        print(f"| operator only, timed pause end -> the reconcile that moves on starts (its stepStartedAt) | {_ms(decided)} |")  # fmt: skip
    for label, key in (("end to end (whole system), ModelVersion stage change to Staging", "e2e_mv_s"),
                       ("end to end (whole system), ModelVersion promotion to Production", "e2e_mv_production_s"),
                       ("end to end (whole system), ModelDeployment spec change", "e2e_md_s")):  # fmt: skip
        xs = r.get(key) or []
        if xs:
            print(f"| {label} | {_ms(xs)} |")
    due = (r.get("rollout_step") or {}).get("pause_due_spread_s")
    if due is not None:
        print(f"\nthe {len(late)} timed pauses fell due within {due:.1f} s of each other")
    steps = r["steps"]
    if len(steps) >= 2:
        first, last = steps[0], steps[-1]
        per_obj = (last["rss_mib"] - first["rss_mib"]) / max(1, last["versions"] - first["versions"]) * 1024
        print(f"\nRSS per additional ModelVersion: {per_obj:.1f} KiB")


if __name__ == "__main__":
    raise SystemExit(main())
