"""Graceful pod termination through the whole sandbox: API server, runner, endpoints and service proxy.

A pod being deleted stops getting new connections at once (its endpoint turns `ready: false,
terminating: true`), finishes what it is serving, and its process is gone within the grace period;
only then is the pod removed from the API. Real `modelops serve` pods behind a Service, under
continuous traffic with a new connection per request, each pod answering with its own name.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import requests

from modelops.sandbox import ServerThread
from modelops.sandbox.cluster.network import ClusterNetwork
from tests.integration.cluster.conftest import (
    APPS,
    CORE,
    IMAGE,
    Obj,
    Workloads,
    alive,
    container_status,
    ready,
    serve_container,
    server_pod_spec,
)

GRACE = 6  # the pods' terminationGracePeriodSeconds
DRAIN = 1.5  # `modelops serve --shutdown-delay`: it keeps accepting this long after SIGTERM, as behind a preStop sleep


class NetworkThread:
    """The sandbox's endpoints controllers and service proxy in their own event loop, as `sandbox up` runs
    them; records when its own EndpointSlice cache changes (what the proxy routes by)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.slice_events: list[tuple[float, str, Obj]] = []
        self.net: ClusterNetwork | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-network", daemon=True)

    def __enter__(self) -> NetworkThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        self.net = ClusterNetwork(self.api_url, gateway=False)
        self.net.slices.add_handler(lambda etype, obj, _old: self.slice_events.append((time.monotonic(), etype, obj)))
        await self.net.start()

    def __exit__(self, *exc: object) -> None:
        assert self.net is not None
        asyncio.run_coroutine_threadsafe(self.net.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def routable_until(self, pod: str) -> float | None:
        """When the proxy's cache last changed from listing `pod` as ready to not (None: still ready)."""
        ready_now, dropped_at = False, None
        slices: dict[str, Obj] = {}
        for at, etype, obj in list(self.slice_events):
            name = obj["metadata"]["name"]
            if etype == "DELETED":
                slices.pop(name, None)
            else:
                slices[name] = obj
            listed = any(
                ep.get("targetRef", {}).get("name") == pod and (ep.get("conditions") or {}).get("ready") is not False
                for s in slices.values()
                for ep in s.get("endpoints") or []
            )
            if ready_now and not listed:
                dropped_at = at
            ready_now = listed
        return None if ready_now else dropped_at


@dataclass
class Answer:
    started: float
    ended: float
    result: str  # the answering pod's name, or "http <status>" / the error's type


@dataclass
class Traffic:
    """Inference requests in a thread of their own, each on a new connection (as kube-proxy sees a fleet)."""

    url: str
    clients: int = 4
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(20)

    def by_pod(self, since: float = 0.0) -> Counter[str]:
        return Counter(a.result for a in list(self.answers) if a.started >= since)

    async def _main(self) -> None:
        async def client(seed: int) -> None:
            rng = random.Random(seed)
            connector = aiohttp.TCPConnector(force_close=True)
            timeout = aiohttp.ClientTimeout(total=15)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                while not self._stop.is_set():
                    data = [round(rng.gauss(0.0, 1.0), 3) for _ in range(4)]
                    body = {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64", "data": data}]}
                    started = time.monotonic()
                    try:
                        async with session.post(self.url, json=body) as resp:
                            out = await resp.json() if resp.status == 200 else None
                            result = str(out["model_version"]) if out else f"http {resp.status}"
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        result = type(exc).__name__
                    self.answers.append(Answer(started, time.monotonic(), result))
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(client(i) for i in range(self.clients)))


class Watch:
    """Every event of a watch on `path`, with the monotonic time it arrived, collected by a thread
    (in one-second watches resumed from the last resourceVersion, so that stopping is quick)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str, Obj]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rv = ""

    def __enter__(self) -> Watch:
        self._rv = requests.get(self.url, timeout=10).json()["metadata"]["resourceVersion"]
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            params = {"watch": "true", "resourceVersion": self._rv, "timeoutSeconds": "1"}
            with requests.get(self.url, params=params, stream=True, timeout=10) as resp:
                for line in resp.iter_lines():
                    if line:
                        event = json.loads(line)
                        self.events.append((time.monotonic(), event["type"], event["object"]))
                        self._rv = event["object"]["metadata"]["resourceVersion"]

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def deployment(replicas: int) -> Obj:
    """Model servers answering with their pod's name as model_version, draining DRAIN s on SIGTERM."""
    container = serve_container()
    args = container["args"]
    args[args.index("--shutdown-delay") + 1] = str(DRAIN)
    args[args.index("--shutdown-timeout") + 1] = "3"
    container["env"] = [{"name": "MODEL_VERSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container["readinessProbe"]["periodSeconds"] = 1
    spec = server_pod_spec()
    spec["containers"] = [container]
    spec["terminationGracePeriodSeconds"] = GRACE
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
        },
    }


@pytest.fixture
def network(apiserver: ServerThread) -> Iterator[NetworkThread]:
    with NetworkThread(apiserver.url) as net:
        yield net


def local_port(w: Workloads) -> int | None:
    svc = w.api.get(f"{CORE}/services/web")
    raw = (svc["metadata"].get("annotations") or {}).get("sandbox.modelops.dev/local-ports")
    return json.loads(raw)["80"] if raw else None


def deployment_counts(events: list[tuple[float, str, Obj]]) -> list[tuple[int, int]]:
    """(replicas, readyReplicas) of every Deployment status written (zeros are omitted in kube's JSON)."""
    out: list[tuple[int, int]] = []
    for _at, _etype, obj in events:
        status = obj.get("status") or {}
        counts = (int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0))
        if not out or out[-1] != counts:
            out.append(counts)
    return out


def test_a_deleted_pod_gets_no_new_connections_finishes_its_requests_and_goes(
    workloads: Workloads, network: NetworkThread
) -> None:
    w = workloads
    w.api.create(f"{APPS}/deployments", deployment(2))
    w.api.create(f"{CORE}/services", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})  # fmt: skip
    pods = w.api.wait(lambda: [p for p in w.api.pods("app=web") if ready(p)] if len(
        [p for p in w.api.pods("app=web") if ready(p)]) == 2 else None, within=30, what="two ready pods")  # fmt: skip
    names = sorted(p["metadata"]["name"] for p in pods)
    port = w.api.wait(lambda: local_port(w), what="the Service's local port")
    url = f"http://127.0.0.1:{port}/v2/models/churn/infer"
    pids = {p.name: p.pid or 0 for p in w.runner.runner.pods() if p.name in names}
    assert all(pids.values()), pids

    with (
        Watch(w.api.url + f"{CORE}/pods") as pod_watch,
        Watch(w.api.url + f"{APPS}/deployments") as deploy_watch,
        Traffic(url) as traffic,
    ):
        w.api.wait(lambda: min(traffic.by_pod()[n] for n in names) >= 20, within=20, what="both pods answering")
        w.api.patch(f"{APPS}/deployments/web", {"spec": {"replicas": 1}})

        def marked() -> tuple[float, Obj] | None:
            return next(((at, o) for at, t, o in pod_watch.events if o["metadata"].get("deletionTimestamp")), None)

        marked_at, victim = w.api.wait(marked, what="a pod marked for deletion")
        gone = victim["metadata"]["name"]
        (kept,) = [n for n in names if n != gone]
        assert victim["metadata"]["deletionGracePeriodSeconds"] == GRACE

        # while it drains (DRAIN s) it is still in the API: its endpoint terminating, not ready, still
        # serving (its readiness); the Endpoints object lists it nowhere
        def terminating_endpoint() -> tuple[Obj, Obj] | None:
            slices = w.api.items("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
            found = [ep for s in slices for ep in s["endpoints"] if ep["targetRef"]["name"] == gone]
            if not found or not found[0]["conditions"].get("terminating"):
                return None
            return found[0], w.api.get(f"{CORE}/endpoints/web")

        endpoint, v1_endpoints = w.api.wait(terminating_endpoint, what="the endpoint marked terminating")
        assert endpoint["conditions"] == {"ready": False, "serving": True, "terminating": True}
        listed = [(key, a["targetRef"]["name"]) for sub in v1_endpoints["subsets"] for key in
                  ("addresses", "notReadyAddresses") for a in sub.get(key) or []]  # fmt: skip
        assert listed == [("addresses", kept)]

        w.api.wait(lambda: not alive(pids[gone]), within=GRACE + 5, what="the deleted pod's process gone")
        exited_at = time.monotonic()
        w.api.wait(lambda: w.api.find(f"{CORE}/pods/{gone}") is None, what="the pod removed from the API")
        dropped_at = network.routable_until(gone)
        assert dropped_at is not None, "the proxy never stopped routing to the deleted pod"
        w.api.wait(lambda: traffic.by_pod(since=time.monotonic() - 0.5)[kept] >= 10, what="traffic on the kept pod")

    answers = traffic.answers
    results = Counter(a.result for a in answers)
    assert set(results) == set(names), results  # every request answered by a pod: none failed
    late = [a for a in answers if a.started > dropped_at and a.result == gone]
    assert late == [], f"{len(late)} requests reached {gone} after the proxy learned it was terminating"
    # the proxy learned it within a moment of the deletion, while the process still accepted connections
    assert dropped_at - marked_at < 1.0, dropped_at - marked_at
    assert exited_at - marked_at < GRACE
    assert alive(pids[kept])

    # the kubelet's last word before removing the pod: containers terminated, not ready, a terminal phase
    last = [o for _at, t, o in pod_watch.events if t == "MODIFIED" and o["metadata"]["name"] == gone][-1]
    assert [c["status"] for c in last["status"]["conditions"] if c["type"] == "Ready"] == ["False"]
    assert container_status(last)["state"]["terminated"]["exitCode"] == 0
    assert last["status"]["phase"] == "Succeeded"
    assert [t for _at, t, o in pod_watch.events if o["metadata"]["name"] == gone][-1] == "DELETED"

    # Deployment status while scaling down: never more ready than replicas, never a drop to nothing ready
    counts = deployment_counts(deploy_watch.events)
    assert all(r <= n for n, r in counts), counts
    assert counts[-1] == (1, 1), counts
    assert all(r >= 1 for _n, r in counts), counts


def test_a_process_ignoring_sigterm_is_killed_when_a_shorter_grace_period_ends(workloads: Workloads) -> None:
    w = workloads
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)"
    )
    w.api.create(f"{CORE}/pods", {"metadata": {"name": "stubborn"}, "spec": {
        "terminationGracePeriodSeconds": 30,
        "containers": [{"name": "c", "image": IMAGE, "command": ["python", "-c", stubborn]}]}})  # fmt: skip
    log = w.state / "pods" / "default" / "stubborn" / "c.log"
    w.api.wait(lambda: log.exists() and "up" in log.read_text(), what="SIGTERM ignored from now on")
    pid = w.api.wait(lambda: next((p.pid for p in w.runner.runner.pods() if p.name == "stubborn"), None), what="pid")

    with Watch(w.api.url + f"{CORE}/pods") as pod_watch:
        w.api.delete(f"{CORE}/pods/stubborn")
        marked = w.api.get(f"{CORE}/pods/stubborn")
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
        assert alive(pid)  # SIGTERM sent, ignored: it has 30 s
        r = requests.delete(w.api.url + f"{CORE}/pods/stubborn", json={"gracePeriodSeconds": 1}, timeout=10)
        assert r.json()["metadata"]["deletionGracePeriodSeconds"] == 1
        # killed once the shortened period is over (the kubelet gives at least 2 s), far before 30 s
        w.api.wait(lambda: not alive(pid), within=10, what="process killed")
        w.api.wait(lambda: w.api.find(f"{CORE}/pods/stubborn") is None, what="pod removed")
    last = [o for _at, t, o in pod_watch.events if t == "MODIFIED" and o["status"].get("phase") == "Failed"][-1]
    assert container_status(last)["state"]["terminated"]["exitCode"] == 137  # 128 + SIGKILL
    assert container_status(last)["ready"] is False
    assert [t for _at, t, _o in pod_watch.events][-1] == "DELETED"
