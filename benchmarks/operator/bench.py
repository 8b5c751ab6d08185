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


def model_deployment(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"versionRef": version},
            "replicas": 1,
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}]}},
        },
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


def histogram_quantiles(text: str, kind: str) -> dict[str, float]:
    """p50/p99 (seconds) and count of modelops_reconcile_duration_seconds{kind} over all results."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("modelops_reconcile_duration_seconds_bucket") and f'kind="{kind}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    if not buckets:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4, help="population steps (linearity)")
    parser.add_argument("--probes", type=int, default=50, help="one-at-a-time changes timed end to end")
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args()

    results: dict[str, Any] = {"versions": args.versions, "deployments": args.deployments, "steps": []}
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
            if args.deployments:
                t0 = time.perf_counter()
                for i in range(1, args.deployments + 1):
                    http("POST", f"{server.url}{GROUP}/modeldeployments", model_deployment(f"md-{i}", f"mv-{i}"))
                md_settled = wait_until(lambda: _count_observed(server.url) >= args.deployments, 600, 0.5)
                rss, cpu = proc_stats(op.pid)
                results["deployments_step"] = {
                    "settle_s": time.perf_counter() - t0,
                    "settled": md_settled,
                    "rss_mib": rss,
                    "cpu_s": cpu,
                }
                print(
                    f"{args.deployments} ModelDeployments observed={md_settled} in {time.perf_counter() - t0:.1f}s  RSS {rss:.0f} MiB  CPU {cpu:.1f}s",
                    flush=True,
                )
            # End to end, one change at a time, with everything live.
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
            rss, cpu = proc_stats(op.pid)
            results["final"] = {"rss_mib": rss, "cpu_s": cpu}
        finally:
            stop(op)
    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


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


def _count_observed(base: str) -> int:
    items = http("GET", f"{base}{GROUP}/modeldeployments")["items"]
    return sum(1 for o in items if (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation"))


def _report(r: dict[str, Any]) -> None:
    print("\n| population | settle (s) | operator RSS (MiB) | operator CPU (s, cumulative) |")
    print("|---|---:|---:|---:|")
    print(f"| idle (0 objects) | - | {r['idle']['rss_mib']:.0f} | {r['idle']['cpu_s']:.1f} |")
    for s in r["steps"]:
        print(f"| {s['versions']} MV | {s['settle_s']:.1f} | {s['rss_mib']:.0f} | {s['cpu_s']:.1f} |")
    if "deployments_step" in r:
        d = r["deployments_step"]
        print(f"| + {r['deployments']} MD | {d['settle_s']:.1f} | {d['rss_mib']:.0f} | {d['cpu_s']:.1f} |")
    print("\n| latency | n | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|")
    for kind, h in r["handler"].items():
        if h.get("count"):
            print(
                f"| handler time (in-process), {kind} | {h['count']:.0f} | {1000 * h['p50']:.1f} | {1000 * h['p99']:.1f} |"
            )
    for label, key in (("end to end (whole system), ModelVersion stage change", "e2e_mv_s"),
                       ("end to end (whole system), ModelDeployment spec change", "e2e_md_s")):  # fmt: skip
        xs = r.get(key) or []
        if xs:
            print(f"| {label} | {len(xs)} | {1000 * statistics.median(xs):.1f} | {1000 * pct(xs, 0.99):.1f} |")
    steps = r["steps"]
    if len(steps) >= 2:
        first, last = steps[0], steps[-1]
        per_obj = (last["rss_mib"] - first["rss_mib"]) / max(1, last["versions"] - first["versions"]) * 1024
        print(f"\nRSS per additional ModelVersion: {per_obj:.1f} KiB")


if __name__ == "__main__":
    raise SystemExit(main())
