"""All rollout state lives in status: the operator, as a process, is SIGKILLed at the points of a
rollout where a half-done action could be repeated (after a weight change, during a pause, during
analysis, between promoting the canary and scaling the old stable away), restarted, and must carry
on at the same step: traffic never shifted twice, the pause and analysis clocks not restarted.

A fault proxy between the operator and the sandbox API server holds the operator's status write
at the chosen moment (the request is never forwarded), so the kill lands exactly there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, watch

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects
from tests.integration.rollout.conftest import (
    NS,
    FakeDeploymentController,
    model_deployment,
    model_version,
    replicas,
    status,
    wait,
    wait_status,
    wait_verified,
)
from tests.support.faultproxy import FaultProxy, kubeconfig_for
from tests.support.operator_process import kill, start_operator

STARTUP = 60.0
"""Seconds an operator process may take to start and act (imports alone take several on a loaded machine)."""
STATUS_PATH = "/apis/modelops.dev/v1alpha1/namespaces/default/modeldeployments/churn/status"


class Operator:
    """`modelops run` as a process behind the fault proxy; started and killed on demand."""

    def __init__(self, proxy: FaultProxy, tmp_path: Path) -> None:
        self.kubeconfig = kubeconfig_for(proxy.url, str(tmp_path / "proxy-kubeconfig"))
        self.log = tmp_path / "operator.log"
        self.proc = None

    def start(self) -> None:
        self.proc = start_operator(self.kubeconfig, self.log)

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)


@pytest.fixture
def op(proxy: FaultProxy, tmp_path: Path) -> Iterator[Operator]:
    o = Operator(proxy, tmp_path)
    yield o
    o.kill()


@pytest.fixture
def ctl(kubeconfig: Path) -> Iterator[FakeDeploymentController]:
    c = FakeDeploymentController(client.AppsV1Api(load_api_client(str(kubeconfig)))).start()
    yield c
    c.stop()


def hold_status_write_when(proxy: FaultProxy, condition: Callable[[], bool]) -> None:
    """Hold the operator's next status write of `churn` issued while ``condition()`` is true."""
    proxy.hold(lambda method, path: method == "PATCH" and path == STATUS_PATH and condition())


class History:
    """Every state a Deployment went through, from a watch (nothing is missed between polls)."""

    def __init__(self, apps: client.AppsV1Api, name: str) -> None:
        self.states: list[tuple[str | None, int]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(apps, name), daemon=True)
        self._thread.start()

    def _run(self, apps: client.AppsV1Api, name: str) -> None:
        with contextlib.suppress(Exception):
            for ev in self._watch.stream(
                apps.list_namespaced_deployment, NS, field_selector=f"metadata.name={name}", timeout_seconds=120
            ):
                d = ev["object"]
                state = ((d.metadata.annotations or {}).get("modelops.dev/model-version"), d.spec.replicas)
                if not self.states or self.states[-1] != state:
                    self.states.append(state)

    def stop(self) -> list[tuple[str | None, int]]:
        self._watch.stop()
        return self.states


class PauseClocks:
    """Every pauseStartedAt the ModelDeployment's status ever held, from a watch."""

    def __init__(self, kubeconfig: Path) -> None:
        self.values: set[str] = set()
        self._watch = watch.Watch()
        custom = client.CustomObjectsApi(load_api_client(str(kubeconfig)))
        self._thread = threading.Thread(target=self._run, args=(custom,), daemon=True)
        self._thread.start()

    def _run(self, custom: client.CustomObjectsApi) -> None:
        with contextlib.suppress(Exception):
            for ev in self._watch.stream(
                custom.list_namespaced_custom_object,
                "modelops.dev",
                "v1alpha1",
                NS,
                "modeldeployments",
                timeout_seconds=120,
            ):
                started = (ev["object"].get("status") or {}).get("pauseStartedAt")
                if started:
                    self.values.add(started)

    def stop(self) -> set[str]:
        self._watch.stop()
        return self.values


def deploy_v1_then_v2(api: CustomObjects, tmp_path: Path, steps: list[dict]) -> None:
    api.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v1", "1"))
    api.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v2", "2"))
    wait_verified(api, "churn-v2", timeout=STARTUP)
    api.create(MODEL_DEPLOYMENT, NS, model_deployment(steps=steps))
    wait_status(api, lambda s: s.get("phase") == "Healthy", "v1 Healthy", timeout=STARTUP)


def test_killed_after_a_weight_change(op, proxy, ctl, custom_objects, apps, tmp_path):
    op.start()
    deploy_v1_then_v2(custom_objects, tmp_path, [{"setWeight": 25}, {"pause": {}}])
    ctl.hold("churn-canary")  # the canary's pod is not ready yet
    stable = History(apps, "churn-stable")
    custom_objects.patch(MODEL_DEPLOYMENT, NS, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})
    wait(lambda: replicas(apps, "churn-canary") == 1, "canary pod")
    # The stable gives up a pod for the now-ready canary (traffic shifted); the status write
    # recording it is held, and the operator dies.
    hold_status_write_when(proxy, lambda: replicas(apps, "churn-stable") == 3)
    ctl.release("churn-canary")
    assert proxy.held.wait(STARTUP), op.log.read_text()
    op.kill()
    assert status(custom_objects)["canaryWeight"] == 0  # the weight change never reached status
    assert (replicas(apps, "churn-stable"), replicas(apps, "churn-canary")) == (3, 1)

    proxy.release_all()
    op.start()
    st = wait_status(
        custom_objects, lambda s: s.get("currentStepIndex") == 1, "next step after restart", timeout=STARTUP
    )
    op.kill()
    assert st["canaryWeight"] == 25
    assert (replicas(apps, "churn-stable"), replicas(apps, "churn-canary")) == (3, 1)
    assert stable.stop() == [("churn-v1", 4), ("churn-v1", 3)]  # shifted once, never back and forth


def test_killed_during_a_pause_keeps_the_pause_clock(op, ctl, custom_objects, kubeconfig, tmp_path):
    op.start()
    deploy_v1_then_v2(custom_objects, tmp_path, [{"setWeight": 25}, {"pause": {"duration": "3s"}}, {"pause": {}}])
    clocks = PauseClocks(kubeconfig)
    custom_objects.patch(MODEL_DEPLOYMENT, NS, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})
    st = wait_status(custom_objects, lambda s: s.get("currentStepIndex") == 1, "timed pause", timeout=STARTUP)
    paused_at = st["pauseStartedAt"]
    op.kill()
    op.start()
    st = wait_status(custom_objects, lambda s: s.get("currentStepIndex") == 2, "past the timed pause", timeout=STARTUP)
    op.kill()
    assert paused_at is not None
    assert st["canaryWeight"] == 25
    # The next pause's clock started too; the timed pause's clock was never rewritten.
    assert clocks.stop() - {st["pauseStartedAt"]} == {paused_at}


def test_killed_between_promoting_and_scaling_away_the_old_stable(
    op, proxy, ctl, custom_objects, kubeconfig, apps, tmp_path
):
    op.start()
    deploy_v1_then_v2(custom_objects, tmp_path, [{"setWeight": 50}])
    stable = History(apps, "churn-stable")

    def stable_runs_v2() -> bool:
        d = apps.read_namespaced_deployment("churn-stable", NS)
        return bool(d.metadata.annotations.get("modelops.dev/model-version") == "churn-v2")

    # Kill point 3: the stable's template already runs v2 (promotion), the status write that
    # records it is held: status still says stable v1 while the live stable runs v2.
    hold_status_write_when(proxy, stable_runs_v2)
    custom_objects.patch(MODEL_DEPLOYMENT, NS, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})
    assert proxy.held.wait(STARTUP), op.log.read_text()
    op.kill()
    assert status(custom_objects)["stableVersion"] == "churn-v1"

    proxy.release_all()
    op.start()
    st = wait_status(custom_objects, lambda s: s.get("phase") == "Healthy" and s["stableVersion"] == "churn-v2",
                     "promoted after restart", timeout=STARTUP)  # fmt: skip
    op.kill()  # (a graceful stop would only cost time)
    versions = [v for v, _ in stable.stop()]
    assert versions.index("churn-v2") == versions.count("churn-v1")  # v1 ... then only v2: never back
    assert (replicas(apps, "churn-stable"), replicas(apps, "churn-canary")) == (4, 0)
    assert [h["event"] for h in st["history"]].count("Promoted") == 1


def test_killed_during_analysis_keeps_the_run_and_its_measurements(op, ctl, custom_objects, tmp_path):
    """The analysis run (its start, its measurements so far) is in status: a restart continues it."""
    op.start()
    metric = {"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "1s", "count": 3, "errorLimit": 50}
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [metric]}}, {"pause": {}}]
    custom_objects.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v1", "1"))
    custom_objects.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v2", "2"))
    wait_verified(custom_objects, "churn-v2", timeout=STARTUP)
    md = model_deployment(steps=steps)
    md["spec"]["prometheus"] = {"address": "http://127.0.0.1:1"}  # every measurement is an Error: never ends
    custom_objects.create(MODEL_DEPLOYMENT, NS, md)
    wait_status(custom_objects, lambda s: s.get("phase") == "Healthy", "v1 Healthy", timeout=STARTUP)
    custom_objects.patch(MODEL_DEPLOYMENT, NS, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})

    def measured(at_least: int) -> Callable[[dict], bool]:
        def done(s: dict) -> bool:
            runs = s.get("analysisRuns") or []
            return bool(runs) and runs[-1].get("stepIndex") == 1 and len(runs[-1].get("measurements") or []) >= at_least

        return done

    before = wait_status(custom_objects, measured(1), "a first measurement", timeout=STARTUP)["analysisRuns"][-1]
    op.kill()
    assert before["measurements"][0]["phase"] == "Error"
    assert "127.0.0.1:1" in before["measurements"][0]["message"]
    taken = len(before["measurements"])
    op.start()
    st = wait_status(custom_objects, measured(taken + 2), "measurements after the restart", timeout=STARTUP)
    op.kill()
    runs = [r for r in st["analysisRuns"] if r.get("stepIndex") == 1]
    assert len(runs) == 1  # the same run, not a new one
    assert runs[0]["startedAt"] == before["startedAt"]  # its clock was not restarted
    assert runs[0]["measurements"][:taken] == before["measurements"]  # nothing measured before the kill was lost
    assert st["currentStepIndex"] == 1
    assert st["canaryWeight"] == 25


def test_killed_between_a_rollback_and_the_registry_change_completes_it(op, proxy, ctl, custom_objects, tmp_path):
    """The registry's change after a rollback is decided from status on every reconcile: an
    operator killed after recording the rollback, before archiving the version, does it on restart."""
    op.start()
    custom_objects.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v1", "1", "Production", approved=True))
    custom_objects.create(MODEL_VERSION, NS, model_version(tmp_path, "churn-v2", "2"))
    wait_verified(custom_objects, "churn-v2", timeout=STARTUP)
    custom_objects.create(
        MODEL_DEPLOYMENT, NS, model_deployment(model={"modelName": "churn"}, steps=[{"setWeight": 50}, {"pause": {}}])
    )
    wait_status(custom_objects, lambda s: s.get("phase") == "Healthy", "v1 Healthy", timeout=STARTUP)
    approval = {"approvedBy": "bob", "approvedAt": "2026-01-01T00:00:00Z", "reason": "AUC +2%"}
    custom_objects.patch(MODEL_VERSION, NS, "churn-v2", {"spec": {"stage": "Production", "approval": approval}})
    wait_status(custom_objects, lambda s: s.get("currentStepIndex") == 1, "canary at 50%", timeout=STARTUP)

    def stage(name: str) -> str | None:
        return (custom_objects.get(MODEL_VERSION, NS, name).get("status") or {}).get("stage")

    def registry_write_due() -> bool:
        """The rollback is recorded and churn-v2 no longer lists the canary: its next status write
        is the registry's change."""
        v2 = custom_objects.get(MODEL_VERSION, NS, "churn-v2").get("status") or {}
        return status(custom_objects).get("phase") == "RolledBack" and not v2.get("deployments")

    path = "/apis/modelops.dev/v1alpha1/namespaces/default/modelversions/churn-v2/status"
    proxy.hold(lambda method, p: method == "PATCH" and p == path and registry_write_due())
    custom_objects.patch_status(MODEL_DEPLOYMENT, NS, "churn", {"abort": True})  # `modelops rollout abort`
    assert proxy.held.wait(STARTUP), op.log.read_text()
    op.kill()
    assert (stage("churn-v2"), stage("churn-v1")) == ("Production", "Archived")  # not yet

    proxy.release_all()
    op.start()
    wait(
        lambda: (stage("churn-v2"), stage("churn-v1")) == ("Archived", "Production"), "registry after restart", STARTUP
    )
    st = status(custom_objects)
    op.kill()
    assert (st["phase"], st["stableVersion"], st["failedVersion"]) == ("RolledBack", "churn-v1", "churn-v2")
    v2 = custom_objects.get(MODEL_VERSION, NS, "churn-v2")
    assert [h["reason"] for h in v2["status"]["history"]].count("RolledBack") == 1
    assert v2["spec"]["stage"] == "Archived"
