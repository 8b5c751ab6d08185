"""The sandbox gateway: Gateway API CRDs, HTTPRoute weights per request, matching, and status."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
import pytest

from modelops.sandbox import ApiServer
from modelops.sandbox.cluster.gateway import GATEWAYCLASSES, GATEWAYS, HTTPROUTES
from modelops.sandbox.cluster.kube import NAMESPACES, ApiStatusError, Kube
from tests.integration.cluster.networking import Cluster, cluster, eventually, fetch_many, load

__all__ = ["cluster"]

Obj = dict[str, Any]


async def gateway(c: Cluster, name: str = "gw", listeners: list[Obj] | None = None) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"gatewayClassName": "sandbox",
            "listeners": listeners or [{"name": "http", "port": 80, "protocol": "HTTP"}]}}  # fmt: skip
    return await c.kube.create(GATEWAYS, "default", body)


async def gateway_port(c: Cluster, name: str = "gw", port: int = 80) -> int:
    async def annotated() -> int | None:
        gw = await c.kube.get(GATEWAYS, "default", name)
        return json.loads(
            (gw["metadata"].get("annotations") or {}).get("sandbox.modelops.dev/local-ports") or "{}"
        ).get(str(port))

    return await eventually(annotated, what=f"gateway {name} gets a local port")


async def route(c: Cluster, name: str, rules: list[Obj], **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"parentRefs": [{"name": "gw"}], "rules": rules, **spec}}
    return await c.kube.create(HTTPROUTES, "default", body)


async def parent_conditions(c: Cluster, name: str, generation: int = 1) -> dict[str, Obj]:
    async def written() -> dict[str, Obj] | None:
        parents = ((await c.kube.get(HTTPROUTES, "default", name)).get("status") or {}).get("parents") or []
        if not parents:
            return None
        conds = {cond["type"]: cond for cond in parents[0]["conditions"]}
        return conds if conds["Accepted"]["observedGeneration"] == generation else None

    return await eventually(written, what=f"status.parents of {name} at generation {generation}")


def backend(name: str, weight: int | None = None, port: int = 80) -> Obj:
    ref: Obj = {"name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


async def test_gateway_api_kinds_are_crds_not_builtins() -> None:
    """Without the Gateway API CRDs (as on a fresh cluster) HTTPRoutes do not exist: a reconciler must cope."""
    async with ApiServer(port=0) as api, Kube(api.url) as kube:
        with pytest.raises(ApiStatusError) as err:
            await kube.list(HTTPROUTES, "default")
        assert err.value.code == 404


async def test_weights_split_2000_requests_and_weight_zero_gets_none(cluster: Cluster) -> None:
    for name in ("stable-1", "stable-2"):
        await cluster.pod(name, {"app": "stable"})
    await cluster.pod("canary-1", {"app": "canary"})
    await cluster.pod("off-1", {"app": "off"})
    for svc in ("stable", "canary", "off"):
        await cluster.service(svc, {"app": svc})
    await gateway(cluster)
    await route(cluster, "split", [{"backendRefs": [backend("stable", 70), backend("canary", 30), backend("off", 0)]}])
    port = await gateway_port(cluster)
    for svc, n in (("stable", 2), ("canary", 1), ("off", 1)):
        await cluster.ready_endpoints(svc, n)
    conds = await parent_conditions(cluster, "split")
    assert conds["Accepted"]["status"] == "True"
    assert conds["ResolvedRefs"]["status"] == "True"

    # one keep-alive connection: the split is per request (L7), not per connection
    codes = await load(f"http://127.0.0.1:{port}/v2/models/m/infer", 2000, concurrency=1)
    hits = {name: b.hits for name, b in cluster.backends.items()}

    assert codes == {"200": 2000}
    assert abs((hits["stable-1"] + hits["stable-2"]) / 2000 - 0.70) < 0.03, hits
    assert abs(hits["canary-1"] / 2000 - 0.30) < 0.03, hits
    assert hits["off-1"] == 0
    assert abs(hits["stable-1"] - hits["stable-2"]) <= 2  # and round robin within the Service

    # a weight change applies to the next requests
    live = await cluster.kube.get(HTTPROUTES, "default", "split")
    live["spec"]["rules"][0]["backendRefs"] = [backend("stable", 0), backend("canary", 100)]
    await cluster.kube.replace(HTTPROUTES, "default", "split", live)
    await parent_conditions(cluster, "split", generation=2)
    assert set(await fetch_many(f"http://127.0.0.1:{port}/", 20, new_connection=False)) == {"canary-1"}


async def test_paths_and_hostnames_route_by_gateway_api_precedence(cluster: Cluster) -> None:
    for name in ("api", "docs", "exact", "fallback", "other-host"):
        await cluster.pod(name, {"app": name})
        await cluster.service(name, {"app": name})
    await gateway(cluster)
    await route(cluster, "site", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": [backend("api")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/docs"}}], "backendRefs": [backend("docs")]},
        {"matches": [{"path": {"type": "Exact", "value": "/api/docs/index"}}], "backendRefs": [backend("exact")]},
        {"backendRefs": [backend("fallback")]},
    ], hostnames=["models.example.com"])  # fmt: skip
    await route(cluster, "elsewhere", [{"backendRefs": [backend("other-host")]}], hostnames=["*.other.test"])
    port = await gateway_port(cluster)
    for name in ("api", "docs", "exact", "fallback", "other-host"):
        await cluster.ready_endpoints(name, 1)
    await parent_conditions(cluster, "site")
    await parent_conditions(cluster, "elsewhere")

    async def get(path: str, host: str) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}) as resp,
        ):
            return await resp.text() if resp.status == 200 else str(resp.status)

    host = "models.example.com"
    assert await get("/api", host) == "api"
    assert await get("/api/v1/x", host) == "api"
    assert await get("/apix", host) == "fallback"  # a prefix matches whole path elements only
    assert await get("/api/docs/guide", host) == "docs"  # the longest prefix wins
    assert await get("/api/docs/index", host) == "exact"  # an exact match beats any prefix
    assert await get("/", "a.other.test") == "other-host"
    assert await get("/", "unknown.test") == "404"


async def test_status_reports_missing_backends_and_the_gateway_address(cluster: Cluster) -> None:
    await cluster.pod("present-1", {"app": "present"})
    await cluster.service("present", {"app": "present"})
    await gateway(cluster)
    await route(cluster, "broken", [{"backendRefs": [backend("present", 1), backend("missing", 1)]}])
    port = await gateway_port(cluster)
    await cluster.ready_endpoints("present", 1)

    conds = await parent_conditions(cluster, "broken")
    assert conds["Accepted"]["status"] == "True"
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == ("False", "BackendNotFound")
    assert "missing" in conds["ResolvedRefs"]["message"]
    # the missing Service's share of requests fails with 500, the rest is served (Gateway API rule)
    answers = Counter(await fetch_many(f"http://127.0.0.1:{port}/", 100, new_connection=False))
    assert answers == {"present-1": 50, "500": 50}

    gw = await cluster.kube.get(GATEWAYS, "default", "gw")
    status = gw["status"]
    assert {"type": "sandbox.modelops.dev/local-url", "value": f"http://127.0.0.1:{port}"} in status["addresses"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    assert status["listeners"][0]["attachedRoutes"] == 1
    gc = await cluster.kube.get(GATEWAYCLASSES, None, "sandbox")
    assert [(c["type"], c["status"]) for c in gc["status"]["conditions"]] == [("Accepted", "True")]

    await cluster.pod("missing-1", {"app": "missing"})
    await cluster.service("missing", {"app": "missing"})

    async def resolved() -> bool:
        conds = await parent_conditions(cluster, "broken")
        return conds["ResolvedRefs"]["status"] == "True"

    await eventually(resolved, what="ResolvedRefs True once the Service exists")


async def test_a_route_from_another_namespace_is_not_allowed_by_default(cluster: Cluster) -> None:
    await cluster.kube.create(NAMESPACES, None, {"metadata": {"name": "team"}})
    await gateway(cluster)
    body = {"metadata": {"name": "foreign"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "default"}], "rules": [{"backendRefs": []}]}}  # fmt: skip
    await cluster.kube.create(HTTPROUTES, "team", body)

    async def refused() -> Obj | None:
        parents = ((await cluster.kube.get(HTTPROUTES, "team", "foreign")).get("status") or {}).get("parents")
        return parents[0] if parents else None

    parent = await eventually(refused, what="status of the foreign route")
    accepted = {c["type"]: c for c in parent["conditions"]}["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "NotAllowedByListeners")
