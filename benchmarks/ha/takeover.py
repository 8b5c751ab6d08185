"""How long a standby takes to take over from a SIGKILLed leader, with the default timings.

    python benchmarks/ha/takeover.py [--rounds 3] [--lease 15 --renew 10 --retry 2]

The sandbox API server runs in this process; the replicas are real `modelops run --leader-elect`
processes. Each round: the current leader is SIGKILLed (a fresh standby having been started and
seen standing by), and two times are taken from the kill:

- **Lease**: until the standby's /healthz says it leads (it holds the Lease, kopf is starting);
- **first reconcile**: until a ModelVersion created right after the kill is Verified (kopf has
  listed, watched and run a handler: the operator serves the cluster again).

The killed process is replaced by a new standby before the next round, so every round kills a
leader that has been renewing for a while. Prints a Markdown table and writes JSON next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from modelops.k8s.client import load_api_client  # noqa: E402
from modelops.k8s.resources import MODEL_VERSION, CustomObjects  # noqa: E402
from modelops.sandbox import ServerThread  # noqa: E402
from tests.support.apiserver import CRDS  # noqa: E402
from tests.support.operator_process import free_port, kill, start_operator  # noqa: E402


class Replica:
    def __init__(self, name: str, kubeconfig: str, log: Path, timing: list[str]) -> None:
        self.name, self.health = name, free_port()
        flags = [
            "--leader-elect",
            "--leader-elect-lease-namespace",
            "default",
            "--leader-elect-identity",
            name,
            *timing,
        ]
        self.proc = start_operator(kubeconfig, log, "default", self.health, free_port(), flags)

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=2) as resp:
                return dict(json.load(resp))
        except OSError:
            return None


def wait(cond: Any, what: str, timeout: float = 180.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--renew", type=float, default=10.0)
    parser.add_argument("--retry", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    timing = [
        "--leader-elect-lease-duration", str(args.lease),
        "--leader-elect-renew-deadline", str(args.renew),
        "--leader-elect-retry-period", str(args.retry),
    ]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="ha-bench-"))
    server = ServerThread(port=0, crds=[CRDS]).start()
    rows: list[dict[str, float]] = []
    replicas: list[Replica] = []
    try:
        kubeconfig = str(server.write_kubeconfig(tmp / "kubeconfig"))
        api = CustomObjects(load_api_client(kubeconfig))
        replicas = [Replica(n, kubeconfig, tmp / f"{n}.log", timing) for n in ("r0", "r1")]
        for round_ in range(args.rounds):
            leader = wait(
                lambda rs=replicas: next((r for r in rs if (s := r.status()) and s["leader"]), None), "a leader"
            )
            standby = next(r for r in replicas if r is not leader)
            wait(lambda s=standby, n=leader.name: (st := s.status()) and st["holder"] == n, "the standby standing by")
            time.sleep(args.lease)  # a leader that has renewed for a while
            data = f"round {round_}".encode()
            path = tmp / f"m{round_}.joblib"
            path.write_bytes(data)
            body = {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "ModelVersion",
                "metadata": {"name": f"probe-{round_}"},
                "spec": {"modelName": "probe", "version": str(round_ + 1),
                         "artifact": {"uri": path.as_uri(), "digest": "sha256:" + hashlib.sha256(data).hexdigest()}},
            }  # fmt: skip
            kill(leader.proc)
            killed = time.monotonic()
            api.create(MODEL_VERSION, "default", body)
            wait(lambda s=standby: (st := s.status()) and st["leader"], "the takeover", every=0.02)
            lease = time.monotonic() - killed
            wait(
                lambda r=round_: (
                    (api.get(MODEL_VERSION, "default", f"probe-{r}").get("status") or {}).get("phase") == "Verified"
                ),
                "the first reconcile",
                every=0.02,
            )
            first = time.monotonic() - killed
            rows.append({"lease_s": round(lease, 2), "first_reconcile_s": round(first, 2)})
            print(f"round {round_}: Lease after {lease:.1f}s, first reconcile after {first:.1f}s", flush=True)
            replicas = [standby, Replica(f"r{round_ + 2}", kubeconfig, tmp / f"r{round_ + 2}.log", timing)]
    finally:
        for r in replicas:
            kill(r.proc)
        server.stop()
    result = {
        "timing": {"lease": args.lease, "renew": args.renew, "retry": args.retry},
        "rounds": rows,
        "worst_case_bound_s": args.lease + 2 * 1.2 * args.retry,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lease_times = [r["lease_s"] for r in rows]
    firsts = [r["first_reconcile_s"] for r in rows]
    print("\n| timing (lease/renew/retry) | rounds | Lease taken over (median, max) | first reconcile (median, max) |")
    print("|---|---:|---:|---:|")
    print(
        f"| {args.lease:g}/{args.renew:g}/{args.retry:g} s | {len(rows)} | {statistics.median(lease_times):.1f} s, "
        f"{max(lease_times):.1f} s | {statistics.median(firsts):.1f} s, {max(firsts):.1f} s |"
    )


if __name__ == "__main__":
    main()
