"""Leader election against the sandbox API server's Lease (coordination.k8s.io/v1, resourceVersion
conflicts), electors in this process, each behind its own fault proxy: one leads among candidates
started together, a leader cut off from the API server stops before anyone takes over, and a
released Lease is taken at once.

Lease of 6 s, renew deadline 4 s, retry 1 s: a 2 s margin between a cut-off leader stopping and
the earliest takeover, and room for a slow renewal on a loaded machine (the defaults are pinned by
tests/unit/test_leader_election.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.core.leader_election import LeaseTiming
from modelops.k8s.client import load_api_client
from modelops.leader import LeaderElector, LeaseClient
from tests.support.chaosproxy import ChaosProxy
from tests.support.faultproxy import kubeconfig_for

TIMING = LeaseTiming(lease_duration=6, renew_deadline=4, retry_period=1)
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


class Candidate:
    """An elector in this process (its own loop on a thread) whose loss of the Lease is recorded, not fatal."""

    def __init__(self, name: str, proxy: ChaosProxy, tmp: Path, journal: list[tuple[str, str]], lease: str) -> None:
        self.name, self.proxy, self.journal = name, proxy, journal
        api = load_api_client(kubeconfig_for(proxy.url, str(tmp / f"{name}.kubeconfig")))
        self.elector = LeaderElector(
            LeaseClient(api, "default", lease, timeout=2.0), name, TIMING, on_lost=lambda why: self._note("lost")
        )
        self.loop = asyncio.new_event_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _note(self, what: str) -> None:
        self.journal.append((self.name, what))

    def campaign(self) -> None:
        """Stand by until leading, then renew until lost or stopped."""

        async def run() -> None:
            if await self.elector.acquire(self._stop.is_set):
                self._note("leads")
                keeper = asyncio.ensure_future(self.elector.keep())
                while not keeper.done() and not self._stop.is_set():  # noqa: ASYNC110 - a thread's flag
                    await asyncio.sleep(0.05)
                if keeper.done():
                    self.elector.lost(keeper.result())
                else:
                    keeper.cancel()
                    await self.elector.release()
                    self._note("released")

        asyncio.run_coroutine_threadsafe(run(), self.loop)

    def close(self) -> None:
        self._stop.set()
        time.sleep(0.3)
        self.elector.leading = False
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.elector.lease.close()


@pytest.fixture
def journal() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def proxies(apiserver) -> Iterator[list[ChaosProxy]]:
    ps = [ChaosProxy(apiserver.url).start() for _ in range(3)]
    yield ps
    for p in ps:
        p.heal()
        p.stop()


def wait_for(cond, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def leaders(cands: list[Candidate]) -> list[str]:
    return [c.name for c in cands if c.elector.leading]


def test_candidates_started_together_elect_exactly_one(proxies, tmp_path, journal):
    cands = [Candidate(n, p, tmp_path, journal, "together") for n, p in zip("abc", proxies, strict=True)]
    try:
        for c in cands:
            c.campaign()
        wait_for(lambda: leaders(cands), "a leader")
        first = leaders(cands)
        winner = next(c for c in cands if c.name == first[0])

        def renewed_three_times_with_one_leader() -> bool:
            assert leaders(cands) == first  # at every look: exactly one, the same one
            return len([s for s in winner.proxy.writes() if s.path.startswith(LEASES)]) >= 3

        wait_for(renewed_three_times_with_one_leader, "three writes of the Lease by its holder")
        assert [what for who, what in journal] == ["leads"]
        # the standbys read; each wrote the Lease at most once (a lost create race), the leader keeps renewing
        for c in cands:
            lease_writes = [s for s in c.proxy.writes() if s.path.startswith(LEASES)]
            if c is not winner:
                assert len(lease_writes) <= 1
                assert all(s.method == "POST" and s.status == 409 for s in lease_writes)
                assert c.elector.holder == winner.name
    finally:
        for c in cands:
            c._stop.set()
        for c in cands:
            c.close()


def test_a_cut_off_leader_stops_before_the_standby_takes_over(proxies, tmp_path, journal):
    a = Candidate("a", proxies[0], tmp_path, journal, "partition")
    b = Candidate("b", proxies[1], tmp_path, journal, "partition")
    try:
        a.campaign()
        wait_for(lambda: a.elector.leading, "a leads")
        b.campaign()
        wait_for(lambda: b.elector.holder == "a", "b sees a holding the Lease")
        # a's connection to the API server fails from now on (its renewals get 503)
        proxies[0].fail(lambda method, path: path.startswith(LEASES), status=503)
        wait_for(lambda: ("b", "leads") in journal, "b takes over", timeout=30)
        assert journal == [("a", "leads"), ("a", "lost"), ("b", "leads")]
        assert leaders([a, b]) == ["b"]
    finally:
        a.close()
        b.close()


def test_a_released_lease_is_taken_at_the_next_retry(proxies, tmp_path, journal):
    a = Candidate("a", proxies[0], tmp_path, journal, "release")
    b = Candidate("b", proxies[1], tmp_path, journal, "release")
    try:
        a.campaign()
        wait_for(lambda: a.elector.leading, "a leads")
        b.campaign()
        wait_for(lambda: b.elector.holder == "a", "b sees a holding the Lease")
        a._stop.set()  # a stops on purpose: releases the Lease
        wait_for(lambda: ("b", "leads") in journal, "b takes over")
        assert journal == [("a", "leads"), ("a", "released"), ("b", "leads")]
        # b took a Lease nobody held at its next read or so, not after a lease duration (6 s: 6+ reads)
        release = proxies[0].writes()[-1]
        assert (release.method, release.path, release.status) == ("PUT", f"{LEASES}/release", 200)
        reads = proxies[1].seen(lambda s: s.method == "GET" and s.path.startswith(LEASES) and s.at >= release.at)
        takeover = next(s for s in proxies[1].writes() if s.method == "PUT")
        assert 1 <= len([s for s in reads if s.at <= takeover.at]) <= 3
    finally:
        a.close()
        b.close()


def test_the_charts_lease_role_is_all_an_elector_needs(apiserver, tmp_path):
    """The chart's Role (leaderElection.enabled), applied to the sandbox API server, which
    authorizes ServiceAccount tokens as RBAC does: the elector creates, renews and releases its
    Lease with it, and may touch no other Lease."""
    import httpx
    import yaml

    from tests.chart._support import CHART_DIR, VALUE_SETS, load_render_chart

    render = load_render_chart()
    docs = [
        render.load(d)
        for d in render.render_documents(
            VALUE_SETS["ha"], release="modelops", namespace="modelops", chart_dir=CHART_DIR
        )
    ]
    rbac = [
        d for d in docs if d["kind"] in ("Role", "RoleBinding") and d["metadata"]["name"] == "modelops-leader-election"
    ]
    assert len(rbac) == 2
    with httpx.Client(base_url=apiserver.url, timeout=10) as http:

        def post(path: str, body: dict) -> dict:
            r = http.post(path, json=body)
            assert r.status_code == 201, r.text
            return dict(r.json())

        post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "modelops"}})
        post(
            "/api/v1/namespaces/modelops/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "modelops"}},
        )
        for doc in rbac:
            post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/modelops/{doc['kind'].lower()}s", doc)
        token = post(
            "/api/v1/namespaces/modelops/serviceaccounts/modelops/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )["status"]["token"]
    config = apiserver.api.kubeconfig()
    config["users"] = [{"name": "sandbox", "user": {"token": token}}]
    path = tmp_path / "sa-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    api = load_api_client(str(path))

    async def campaign(name: str) -> tuple[bool, bool, str]:
        lost: list[str] = []
        elector = LeaderElector(LeaseClient(api, "modelops", name, timeout=2.0), "pod-a", TIMING, on_lost=lost.append)
        try:
            took = await elector.try_acquire_or_renew()
            renewed = took and await elector.try_acquire_or_renew()
            if took:
                elector._lead()
                await elector.release()
            return took, renewed, elector.holder
        finally:
            elector.leading = False
            elector.lease.close()

    assert asyncio.run(campaign("modelops")) == (True, True, "pod-a")  # create, then update by name
    spec = client_lease(api, "modelops")
    assert (spec.holder_identity, spec.lease_duration_seconds) == ("", 1)  # released: get + update
    assert asyncio.run(campaign("another-lease")) == (False, False, "")  # create allowed, get refused: 403


def client_lease(api, name: str):
    from kubernetes import client

    return client.CoordinationV1Api(api).read_namespaced_lease(name, "modelops").spec
