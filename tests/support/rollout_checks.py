"""What a rollout wrote, seen through watches, and the assertions that it is exactly what one
operator writes: shared by the HA and fault tests (sandbox) and the e2e suite (kind), so that both
prove the same behaviour.

A watch sees every write (polling would miss states between two looks); a state repeated in a
row is one state. With ``replicas: 4`` and the default budget (``maxSurge: 25%``, one pod), a
canary promoted to churn-v2 goes through exactly these states (docs/rollouts.md, "The replica
budget"): the stable gives up one pod per ready canary pod and never takes one back; the
hand-over rewrites the stable to the new version and grows it while the canary shrinks.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

State = tuple[str | None, int]
PROMOTED_HISTORY = ["Deploying", "RolloutStarted", "Promoting", "Promoted"]
ROLLED_BACK_HISTORY = ["Deploying", "RolloutStarted", "RolledBack"]


class Watched:
    """Every state an object went through, from a watch started now.

    ``current()`` reads the object now: :meth:`stop` first waits (a few seconds at most) until the
    watch has delivered the state the object is in, so the last write is never missed.
    """

    def __init__(
        self,
        list_fn: Callable[..., Any],
        *args: Any,
        state: Callable[[Any], Any],
        current: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.states: list[Any] = []
        self._state, self._current = state, current
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(list_fn, args, kwargs, state), daemon=True)
        self._thread.start()

    def _run(self, list_fn: Callable[..., Any], args: Any, kwargs: Any, state: Callable[[Any], Any]) -> None:
        with contextlib.suppress(Exception):
            for ev in self._watch.stream(list_fn, *args, timeout_seconds=600, **kwargs):
                s = state(ev["object"])
                if s is not None and (not self.states or self.states[-1] != s):
                    self.states.append(s)

    def stop(self, settle: float = 10.0) -> list[Any]:
        if self._current is not None:
            deadline = time.monotonic() + settle
            want = self._state(self._current())
            while time.monotonic() < deadline and not (self.states and self.states[-1] == want):
                time.sleep(0.05)
        self._watch.stop()
        return list(self.states)


def _track_state(d: Any) -> State:
    return ((d.metadata.annotations or {}).get("modelops.dev/model-version"), int(d.spec.replicas or 0))


def track_states(apps: client.AppsV1Api, namespace: str, deployment: str) -> Watched:
    """(model version, spec.replicas) of one model-server Deployment (``<name>-stable``, ``<name>-canary``)."""
    return Watched(
        apps.list_namespaced_deployment,
        namespace,
        field_selector=f"metadata.name={deployment}",
        state=_track_state,
        current=lambda: apps.read_namespaced_deployment(deployment, namespace),
    )


def canary_weights(custom: client.CustomObjectsApi, namespace: str, name: str) -> Watched:
    """``status.canaryWeight`` of one ModelDeployment."""
    return Watched(
        custom.list_namespaced_custom_object,
        "modelops.dev",
        "v1alpha1",
        namespace,
        "modeldeployments",
        field_selector=f"metadata.name={name}",
        state=lambda o: (o.get("status") or {}).get("canaryWeight"),
        current=lambda: custom.get_namespaced_custom_object(
            "modelops.dev", "v1alpha1", namespace, "modeldeployments", name
        ),
    )


class RolloutRecorder:
    """The three watches of one ModelDeployment's rollout."""

    def __init__(self, apps: client.AppsV1Api, custom: client.CustomObjectsApi, namespace: str, name: str) -> None:
        self.stable = track_states(apps, namespace, f"{name}-stable")
        self.canary = track_states(apps, namespace, f"{name}-canary")
        self.weights = canary_weights(custom, namespace, name)

    def stop(self) -> tuple[list[State], list[State], list[int]]:
        return self.stable.stop(), self.canary.stop(), self.weights.stop()


def promoted_states(v1: str, v2: str) -> tuple[list[State], list[State]]:
    """(stable, canary) states of a 4-replica rollout from v1 to v2 that ends promoted."""
    stable = [(v1, 4), (v1, 3), (v1, 2), (v1, 1), (v1, 0), (v2, 1), (v2, 2), (v2, 3), (v2, 4)]
    canary = [(v2, 1), (v2, 2), (v2, 3), (v2, 4), (v2, 3), (v2, 2), (v2, 1), (v2, 0)]
    return stable, canary


def assert_promoted_once(
    recorded: tuple[list[State], list[State], list[int]], status: dict[str, Any], v1: str, v2: str, weights: list[int]
) -> None:
    """Traffic shifted exactly as one operator shifts it, promoted once, one history entry per event.

    ``weights``: the setWeight steps (e.g. [25, 50]). ``status.canaryWeight`` goes 0, those, 100,
    0, only up until the hand-over; it is a snapshot, not a log: a status write superseded before
    it lands (a conflict, a lost connection) may hide the short 100% moment, which the
    Deployments' states always show.
    """
    stable, canary, seen = recorded
    want_stable, want_canary = promoted_states(v1, v2)
    assert stable == want_stable, f"stable track states: {stable}"
    assert canary == want_canary, f"canary track states: {canary}"
    assert seen in ([0, *weights, 100, 0], [0, *weights, 0]), f"canaryWeight: {seen}"
    assert [h["event"] for h in status["history"]] == PROMOTED_HISTORY, status["history"]
    assert (status["phase"], status["stableVersion"], status.get("canaryVersion")) == ("Healthy", v2, None)


def assert_rolled_back_without_promotion(
    recorded: tuple[list[State], list[State], list[int]], status: dict[str, Any], v1: str, v2: str, replicas: int = 4
) -> None:
    """The canary never became the stable: the stable ran v1 throughout and is back at ``replicas``."""
    stable, canary, _ = recorded
    assert {v for v, _ in stable} == {v1}, f"stable track states: {stable}"
    assert stable[-1] == (v1, replicas), stable
    assert canary[-1] == (v2, 0), canary
    assert [h["event"] for h in status["history"]] == ROLLED_BACK_HISTORY, status["history"]
    assert (status["phase"], status["stableVersion"], status.get("failedVersion")) == ("RolledBack", v1, v2)
