"""The live rollouts run at the same time, each in its own namespace of one sandbox cluster.

`rollouts` starts, in threads, the scenario of every selected test (a test names its scenario by
requesting the fixture of that name), so `-k gateway` runs only the gateway's; each scenario
fixture waits for its own result. Pod start-up dominates the time, and most of a scenario is
waiting for pods, so running them together costs about as much as the longest one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.live import scenarios
from tests.support.cluster import SandboxCluster

SCENARIO_TIMEOUT = 400.0

SCENARIOS: dict[str, Callable[[SandboxCluster], Any]] = {
    "good_rollout": scenarios.good_rollout,
    "bad_rollouts": scenarios.bad_rollouts,
    "gateway_rollout": scenarios.gateway_rollout,
    "registry_rollout": scenarios.registry_rollout,
}


@pytest.fixture(scope="session")
def rollouts(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Any]]]:
    """The scenarios the selected tests need, started together on the sandbox cluster."""
    if shutil.which("prometheus") is None:
        pytest.skip("needs the prometheus binary (Debian package `prometheus`)")
    wanted = [name for name in SCENARIOS if any(name in item.fixturenames for item in request.session.items)]  # type: ignore[attr-defined]
    cluster: SandboxCluster = request.getfixturevalue("sandbox_cluster")
    pool = ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="scenario")
    try:
        yield {name: pool.submit(SCENARIOS[name], cluster) for name in wanted}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(rollouts: dict[str, Future[Any]], name: str) -> Any:
    return rollouts[name].result(timeout=SCENARIO_TIMEOUT)


@pytest.fixture
def good_rollout(rollouts: dict[str, Future[Any]]) -> scenarios.GoodRollout:
    result: scenarios.GoodRollout = _result(rollouts, "good_rollout")
    return result


@pytest.fixture
def bad_rollouts(rollouts: dict[str, Future[Any]]) -> dict[str, scenarios.RolledBack]:
    result: dict[str, scenarios.RolledBack] = _result(rollouts, "bad_rollouts")
    return result


@pytest.fixture
def gateway_rollout(rollouts: dict[str, Future[Any]]) -> scenarios.GatewayRollout:
    result: scenarios.GatewayRollout = _result(rollouts, "gateway_rollout")
    return result


@pytest.fixture
def registry_rollout(rollouts: dict[str, Future[Any]]) -> scenarios.RegistryRollout:
    result: scenarios.RegistryRollout = _result(rollouts, "registry_rollout")
    return result
