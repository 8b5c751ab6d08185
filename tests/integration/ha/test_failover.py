"""Two `modelops run --leader-elect` processes on the sandbox API server, each behind its own
recording fault proxy (so every request is attributed to the replica that sent it).

One scenario, run once for the module (starting operator processes costs seconds): both replicas
start together; the leader deploys churn-v1 and resolves a DriftMonitor while the standby writes
nothing. Then, mid-rollout, at the worst moment (the stable track gave a pod up for the canary,
the status write recording it is held; a retraining Job was created, the status write recording
it is held), the leader is SIGKILLed. The standby takes the Lease over and carries on: traffic
shifted once, never again; the Job not created twice; the status history exactly one entry per
event, as a single operator writes it.

The Lease is short here (8 s, renew deadline 6 s, retry 1 s: a renewal may take seconds on a loaded
machine, and a leader that cannot renew in time exits, as it must) to keep the test fast; the default
numbers are pinned by tests/unit/test_leader_election.py, and the takeover time with them is
measured by benchmarks/ha/takeover.py.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects
from tests.integration.drift.conftest import monitor, run_check, write_csv
from tests.integration.rollout.conftest import (
    NS,
    FakeDeploymentController,
    model_deployment,
    model_version,
    replicas,
    wait,
    wait_status,
    wait_verified,
)
from tests.support.chaosproxy import ChaosProxy, Seen
from tests.support.faultproxy import kubeconfig_for
from tests.support.operator_process import free_port, kill, start_operator, stop
from tests.support.rollout_checks import RolloutRecorder, State, assert_promoted_once

STARTUP = 120.0
"""Seconds two operator processes may take to start and act together (imports alone take many on a loaded machine)."""
ELECTION = [
    "--leader-elect",
    "--leader-elect-lease-namespace", NS,
    "--leader-elect-lease-duration", "8",
    "--leader-elect-renew-deadline", "6",
    "--leader-elect-retry-period", "1",
]  # fmt: skip
LEASE = "modelops-operator"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
MD_STATUS = f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/modeldeployments/churn/status"
DM_STATUS = f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/driftmonitors/churn-drift/status"
WEIGHT_25 = re.compile(rb'"canaryWeight":\s*25\b')
STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def is_lease(path: str) -> bool:
    return path.startswith(LEASES)


@dataclass
class Replica:
    name: str
    proxy: ChaosProxy
    log: Path
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: Any = None

    def start(self, tmp: Path) -> None:
        kubeconfig = kubeconfig_for(self.proxy.url, str(tmp / f"{self.name}.kubeconfig"))
        self.proc = start_operator(
            kubeconfig,
            self.log,
            NS,
            self.health_port,
            self.metrics_port,
            [*ELECTION, "--leader-elect-identity", self.name],
        )

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as resp:
                return dict(json.load(resp))
        except OSError:
            return None

    def leader_metric(self) -> float | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(f'modelops_leader{{identity="{self.name}"}}'):
                    return float(line.split()[-1])
        return None


@dataclass
class Failover:
    leader: Replica
    standby: Replica
    health_before: dict[str, Any]
    metrics_before: dict[str, float | None]
    standby_writes_before_kill: list[Seen]
    lease_before_kill: Any
    at_kill: dict[str, Any]
    health_after: dict[str, Any] | None
    metric_after: float | None
    dead_requests_after_kill: list[Seen]
    recorded: tuple[list[State], list[State], list[int]]
    status: dict[str, Any]
    monitor_status: dict[str, Any]
    jobs: list[str]
    lease_after_stop: Any
    survivor_exit: int | None
    takeover_seconds: float
    logs: str = ""


def lease(coordination: client.CoordinationV1Api) -> Any:
    try:
        return coordination.read_namespaced_lease(LEASE, NS).spec
    except client.exceptions.ApiException:
        return None


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failover]:
    from modelops.sandbox import ServerThread
    from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS
    from tests.support.apiserver import CRDS

    tmp = tmp_path_factory.mktemp("failover")
    server = ServerThread(port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0).start()
    kubeconfig = server.write_kubeconfig(tmp / "kubeconfig")
    api_client = load_api_client(str(kubeconfig))
    api, apps = CustomObjects(api_client), client.AppsV1Api(api_client)
    batch, coordination = client.BatchV1Api(api_client), client.CoordinationV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    ctl = FakeDeploymentController(apps).start()
    replicas_ = [Replica(n, ChaosProxy(server.url).start(), tmp / f"operator-{n}.log") for n in "ab"]
    try:
        for r in replicas_:  # started together
            r.start(tmp)
        holder = wait(lambda: (spec := lease(coordination)) and spec.holder_identity, "a Lease holder", STARTUP)
        leader = next(r for r in replicas_ if r.name == holder)
        standby = next(r for r in replicas_ if r is not leader)
        wait(lambda: all(r.health() for r in replicas_), "both /healthz", STARTUP)

        # -- the leader alone acts: a first deploy and a DriftMonitor ---------------------------
        api.create(MODEL_VERSION, NS, model_version(tmp, "churn-v1", "1"))
        api.create(MODEL_VERSION, NS, model_version(tmp, "churn-v2", "2"))
        wait_verified(api, "churn-v2", timeout=STARTUP)
        api.create(MODEL_DEPLOYMENT, NS, model_deployment(steps=STEPS))
        wait_status(api, lambda s: s.get("phase") == "Healthy", "v1 Healthy", timeout=STARTUP)
        dm = monitor(write_csv(tmp / "ref.csv", 0, seed=1), write_csv(tmp / "cur.csv", 1.0, seed=2))
        dm["spec"]["columnMapping"] = {"categorical": ["plan"], "numerical": ["tenure", "charges", "calls"]}
        api.create(DRIFT_MONITOR, NS, dm)
        wait(lambda: (api.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"),
             "DriftMonitor resolved", STARTUP)  # fmt: skip
        health_before = {r.name: r.health() for r in replicas_}
        metrics_before = {r.name: r.leader_metric() for r in replicas_}

        # -- mid-rollout, at the worst moment, the leader dies -----------------------------------
        recorder = RolloutRecorder(apps, custom, NS, "churn")
        ctl.hold("churn-canary")
        api.patch(MODEL_DEPLOYMENT, NS, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})
        wait(lambda: replicas(apps, "churn-canary") == 1, "canary pod", STARTUP)
        # the status writes recording the 25% step and the retraining Job (picked by what they write)
        leader.proxy.hold_body(lambda m, path, body: path == MD_STATUS and WEIGHT_25.search(body) is not None)
        leader.proxy.hold_body(lambda m, path, body: path == DM_STATUS and b'"activeJob"' in body)
        ctl.release("churn-canary")
        assert run_check(kubeconfig).returncode == 0  # the CronJob pod's drift check: drifted
        wait(lambda: {p for _, p in leader.proxy.held_requests} >= {MD_STATUS, DM_STATUS}, "both writes held", STARTUP)
        standby_writes = standby.proxy.writes()
        lease_before = lease(coordination)
        kill(leader.proc)
        killed_at, seen_before = time.monotonic(), len(leader.proxy.log)
        at_kill = {
            "canaryWeight": api.get(MODEL_DEPLOYMENT, NS, "churn")["status"]["canaryWeight"],
            "replicas": (replicas(apps, "churn-stable"), replicas(apps, "churn-canary")),
            "jobs": [j.metadata.name for j in batch.list_namespaced_job(NS).items],
            "activeJob": api.get(DRIFT_MONITOR, NS, "churn-drift")["status"].get("activeJob"),
        }

        # -- the standby takes over and carries on ----------------------------------------------
        wait(lambda: (h := standby.health()) and h["leader"], "the standby leads", STARTUP)
        takeover = time.monotonic() - killed_at
        wait_status(api, lambda s: s.get("currentStepIndex") == 1, "step 1 after the takeover", timeout=STARTUP)
        wait(lambda: api.get(DRIFT_MONITOR, NS, "churn-drift")["status"].get("activeJob"), "Job recorded", STARTUP)
        api.patch_status(MODEL_DEPLOYMENT, NS, "churn", {"promoteStep": 1})
        wait_status(api, lambda s: s.get("currentStepIndex") == 3, "paused at 50%", timeout=STARTUP)
        api.patch_status(MODEL_DEPLOYMENT, NS, "churn", {"promoteStep": 3})
        status = wait_status(
            api, lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == "churn-v2", "v2 Healthy",
            timeout=STARTUP,
        )  # fmt: skip
        health_after, metric_after = standby.health(), standby.leader_metric()
        monitor_status = api.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
        jobs = [j.metadata.name for j in batch.list_namespaced_job(NS).items]
        stop(standby.proc)  # SIGTERM: handlers stop, the Lease is released
        yield Failover(
            leader=leader,
            standby=standby,
            health_before=health_before,
            metrics_before=metrics_before,
            standby_writes_before_kill=standby_writes,
            lease_before_kill=lease_before,
            at_kill=at_kill,
            health_after=health_after,
            metric_after=metric_after,
            dead_requests_after_kill=leader.proxy.log[seen_before:],
            recorded=recorder.stop(),
            status=status,
            monitor_status=monitor_status,
            jobs=jobs,
            lease_after_stop=lease(coordination),
            survivor_exit=standby.proc.returncode,
            takeover_seconds=takeover,
            logs="\n".join(f"--- {r.name}\n{r.log.read_text()[-4000:]}" for r in replicas_),
        )
    finally:
        for r in replicas_:
            if r.proc is not None:
                kill(r.proc)
            r.proxy.heal()
            r.proxy.stop()
        ctl.stop()
        server.stop()


def test_two_replicas_started_together_exactly_one_acts(failover: Failover):
    f = failover
    # The standby wrote nothing at all before the kill: not a status, an Event, a child, nor the
    # Lease (a lost race to create it, refused with 409, is the one write it may have tried).
    assert [(s.method, s.path, s.status) for s in f.standby_writes_before_kill if not is_lease(s.path)] == []
    assert all(s.method == "POST" and s.status == 409 for s in f.standby_writes_before_kill), f.logs
    assert f.lease_before_kill.holder_identity == f.leader.name
    assert f.lease_before_kill.lease_transitions == 0  # held by one identity since it was created


def test_healthz_and_metrics_say_which_replica_leads(failover: Failover):
    f = failover
    lease = "default/modelops-operator"
    assert f.health_before[f.leader.name] == {
        "status": "ok", "identity": f.leader.name, "leader": True, "holder": f.leader.name, "lease": lease,
    }  # fmt: skip
    assert f.health_before[f.standby.name] == {
        "status": "ok", "identity": f.standby.name, "leader": False, "holder": f.leader.name, "lease": lease,
    }  # fmt: skip
    assert f.metrics_before == {f.leader.name: 1.0, f.standby.name: 0.0}
    assert f.health_after is not None
    assert (f.health_after["leader"], f.health_after["holder"]) == (True, f.standby.name)
    assert f.metric_after == 1.0


def test_the_standby_continues_the_rollout_without_shifting_traffic_twice(failover: Failover):
    f = failover
    assert f.dead_requests_after_kill == []
    # At the kill, the stable had given a pod up for the canary, and status did not know yet.
    assert f.at_kill["canaryWeight"] == 0
    assert f.at_kill["replicas"] == (3, 1)
    # Exactly what one operator writes: every state once, in order, never back.
    assert_promoted_once(f.recorded, f.status, "churn-v1", "churn-v2", weights=[25, 50])


def test_the_retraining_job_is_created_once(failover: Failover):
    f = failover
    assert f.at_kill["jobs"]
    assert f.at_kill["activeJob"] is None
    assert f.jobs == f.at_kill["jobs"] == [f.monitor_status["activeJob"]["name"]]
    assert f.monitor_status["consecutiveDrifted"] == 1
    assert f.monitor_status["evaluatedCheckTime"] == f.monitor_status["lastCheckTime"]


def test_a_stopped_leader_releases_the_lease(failover: Failover):
    f = failover
    assert f.survivor_exit == 0, f.logs
    assert f.lease_after_stop.holder_identity in ("", None)
    assert f.lease_after_stop.lease_duration_seconds == 1
    assert f.lease_after_stop.lease_transitions == 1  # a -> b (or b -> a): one takeover
