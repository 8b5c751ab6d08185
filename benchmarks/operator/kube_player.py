"""What a cluster does around the operator, played from the benchmark process over HTTP.

- :class:`Watcher`: list + watch of one collection (reconnects when the server ends a watch), so
  the benchmark follows objects without polling the API server; it lists again only after an error.
- :class:`ObjectWatch`: the latest version of every object of a kind, and when each recent
  version arrived, so an end-to-end probe waits on the watch; :class:`RolloutWatch` adds when each
  ModelDeployment reached each step.
- :class:`DeploymentPlayer`: the Deployment controller and the kubelets for the model-server
  Deployments, as far as the operator can see them: on every new generation it sets
  ``observedGeneration``/``replicas``/``updatedReplicas`` at once (ready pods of an unchanged
  template stay ready, a new template starts at 0 ready), then, ``ready_after`` seconds later,
  ``readyReplicas``/``availableReplicas`` to the desired count. ``pods="unready"`` stops after the
  first half (pods that never pass their readiness probe); ``pods="none"`` plays nothing (no
  controller at all, what the benchmark measured before it played one).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Literal, Self

Obj = dict[str, Any]
Pods = Literal["ready", "unready", "none"]


class Watcher:
    """Calls ``on_event(type, object)`` for every object of ``path`` (ADDED for the initial list)."""

    def __init__(self, base: str, path: str, on_event: Callable[[str, Obj], None], query: str = "") -> None:
        self.base, self.path, self.query, self.on_event = base, path, query, on_event
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {path}")

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        sep = "&" if self.query else ""
        rv: str | None = None  # None: list first (at start, and after an error)
        while not self._stop.is_set():
            try:
                if rv is None:
                    with urllib.request.urlopen(f"{self.base}{self.path}?{self.query}", timeout=30) as resp:
                        listed = json.loads(resp.read())
                    for item in listed.get("items") or []:
                        self.on_event("ADDED", item)
                    rv = str(listed["metadata"]["resourceVersion"])
                url = f"{self.base}{self.path}?{self.query}{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion={rv}"
                with urllib.request.urlopen(url, timeout=90) as stream:
                    for line in stream:
                        if self._stop.is_set():
                            return
                        if line.strip():
                            event = json.loads(line)
                            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                                self.on_event(event["type"], event["object"])
                                rv = str(event["object"]["metadata"]["resourceVersion"])
                            elif event.get("type") == "BOOKMARK":
                                rv = str(event["object"]["metadata"]["resourceVersion"])
                            elif event.get("type") == "ERROR":  # 410 Gone: the version is too old
                                rv = None
                # the server ended the watch: go on from the last version seen, with no new listing
            except (OSError, ValueError, KeyError):
                rv = None
                if not self._stop.is_set():
                    time.sleep(0.2)


class DeploymentPlayer:
    """The Deployment controller and kubelets for Deployments labelled ``modelops.dev/deployment``."""

    def __init__(self, base: str, namespace: str, pods: Pods, ready_after: float) -> None:
        self.base, self.namespace, self.pods, self.ready_after = base, namespace, pods, ready_after
        self.patches = 0
        self._lock = threading.Lock()
        self._handled: dict[str, int] = {}  # name -> generation played
        self._templates: dict[str, str] = {}  # name -> template hash of that generation
        self._ready: dict[str, int] = {}  # name -> readyReplicas last written
        self._queue: list[tuple[float, int, str, int, Obj]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        self._watcher = Watcher(base, path, self._on_event, "labelSelector=modelops.dev%2Fdeployment")
        self._worker = threading.Thread(target=self._work, daemon=True, name="deployment player")

    def start(self) -> DeploymentPlayer:
        if self.pods != "none":
            self._watcher.start()
            self._worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._watcher.stop()
        with self._wake:
            self._wake.notify_all()

    def _on_event(self, kind: str, obj: Obj) -> None:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        name = meta["name"]
        with self._lock:
            if kind == "DELETED":
                for table in (self._handled, self._templates, self._ready):
                    table.pop(name, None)
                return
            generation = int(meta.get("generation") or 1)
            if self._handled.get(name, 0) >= generation:
                return
            want = int(spec.get("replicas", 1))
            template = hashlib.sha256(json.dumps(spec.get("template"), sort_keys=True).encode()).hexdigest()
            same_template = self._templates.get(name) == template
            ready = min(self._ready.get(name, 0), want) if same_template else 0
            self._handled[name], self._templates[name] = generation, template
            now = time.monotonic()
            self._push(now, name, generation, _status(generation, want, ready))
            if self.pods == "ready" and ready < want:
                self._push(now + self.ready_after, name, generation, _status(generation, want, want))
            self._wake.notify()

    def _push(self, at: float, name: str, generation: int, status: Obj) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), name, generation, status))

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set() and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stop.is_set():
                    return
                _, _, name, generation, status = heapq.heappop(self._queue)
                if self._handled.get(name) != generation:
                    continue  # a newer generation was played meanwhile
                self._ready[name] = status["readyReplicas"]
            self._patch(name, status)

    def _patch(self, name: str, status: Obj) -> None:
        url = f"{self.base}/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}/status"
        body = json.dumps({"status": status}).encode()
        req = urllib.request.Request(
            url, data=body, method="PATCH", headers={"Content-Type": "application/merge-patch+json"}
        )
        with contextlib.suppress(urllib.error.HTTPError, OSError):  # 404: deleted meanwhile
            urllib.request.urlopen(req, timeout=30).read()
            self.patches += 1


def _status(generation: int, want: int, ready: int) -> Obj:
    return {
        "observedGeneration": generation,
        "replicas": want,
        "updatedReplicas": want,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }


class ObjectWatch:
    """The latest state of every object of one kind, from one watch, and when (this process's
    clocks) each recent version of it arrived: end-to-end probes wait on the watch, not by polling
    the API server (which runs in this process and would take its interpreter lock from the
    operator's requests)."""

    def __init__(self, base: str, namespace: str, plural: str, group: str = "modelops.dev/v1alpha1") -> None:
        self.latest: dict[str, Obj] = {}
        self._recent: dict[str, collections.deque[tuple[float, Obj]]] = {}
        self._changed = threading.Condition()
        self._watcher = Watcher(base, f"/apis/{group}/namespaces/{namespace}/{plural}", self._on_event)

    def start(self) -> Self:
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._watcher.stop()

    def _on_event(self, kind: str, obj: Obj) -> None:
        name, arrived = obj["metadata"]["name"], time.perf_counter()
        with self._changed:
            if kind == "DELETED":
                self.latest.pop(name, None)
                self._recent.pop(name, None)
            else:
                self.latest[name] = obj
                self._recent.setdefault(name, collections.deque(maxlen=16)).append((arrived, obj))
                self._seen(name, obj)
            self._changed.notify_all()

    def _seen(self, name: str, obj: Obj) -> None:
        """Called under the lock for every version of every object (subclasses record more)."""

    def wait_for(self, name: str, predicate: Callable[[Obj], bool], since: float, timeout: float) -> float | None:
        """When (``time.perf_counter``) the first version of ``name`` that arrived at or after
        ``since`` and satisfies ``predicate`` arrived; None after ``timeout`` seconds."""
        end = time.perf_counter() + timeout
        with self._changed:
            while True:
                for arrived, obj in self._recent.get(name, ()):
                    if arrived >= since and predicate(obj):
                        return arrived
                left = end - time.perf_counter()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def count(self, predicate: Callable[[Obj], bool]) -> int:
        with self._changed:
            return sum(1 for o in self.latest.values() if predicate(o))


class RolloutWatch(ObjectWatch):
    """The ModelDeployments, and when (wall clock) each first reached a step index: as this process
    saw it arrive, and as the operator stamped it (``stepStartedAt``)."""

    def __init__(self, base: str, namespace: str) -> None:
        super().__init__(base, namespace, "modeldeployments")
        self.first_at_step: dict[tuple[str, int], float] = {}
        self.pause_started: dict[tuple[str, int], str] = {}
        self.step_started: dict[tuple[str, int], str] = {}
        """The operator's own clock when it moved to the step (status.stepStartedAt)."""

    def _seen(self, name: str, obj: Obj) -> None:
        status = obj.get("status") or {}
        step = status.get("currentStepIndex")
        if step is not None:
            self.first_at_step.setdefault((name, int(step)), time.time())
            if status.get("pauseStartedAt"):
                self.pause_started.setdefault((name, int(step)), status["pauseStartedAt"])
            if status.get("stepStartedAt"):
                self.step_started.setdefault((name, int(step)), status["stepStartedAt"])
