"""Kubernetes I/O of `modelops rollout`: control requests written to the status subresource, and a
live feed of one ModelDeployment.

Every request is read-decide-write with the object's resourceVersion as precondition: if the
operator (or another user) wrote in between, the API server answers 409 and the request is decided
again on the fresh object, so a click never acts on a state the user did not see.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from modelops import GROUP, VERSION
from modelops.k8s.resources import MODEL_DEPLOYMENT, Conflict, CustomObjects, NotFound, Obj, _translate

CONFLICT_ATTEMPTS = 5
"""Re-reads after a 409 before giving up: the operator writes status a few times per step at most."""


@dataclass(frozen=True)
class Written:
    """What a control request wrote: the patch, and the object the API server returned."""

    patch: Obj
    obj: Obj
    attempts: int


def patch_status_guarded(
    api: CustomObjects,
    namespace: str,
    name: str,
    decide: Callable[[Obj], Obj],
    attempts: int = CONFLICT_ATTEMPTS,
) -> Written:
    """Read the object, ``decide(obj)`` the status patch, write it with the read resourceVersion.

    ``decide`` may raise to refuse; it is called again on the fresh object after every 409.
    """
    for attempt in range(1, attempts + 1):
        obj = api.get(MODEL_DEPLOYMENT, namespace, name)
        patch = decide(obj)
        try:
            written = api.patch_status(
                MODEL_DEPLOYMENT, namespace, name, patch, resource_version=obj["metadata"]["resourceVersion"]
            )
        except Conflict:
            if attempt == attempts:
                raise
            continue
        return Written(patch=patch, obj=written, attempts=attempt)
    raise AssertionError("unreachable")


def patch_spec_guarded(
    api: CustomObjects, namespace: str, name: str, decide: Callable[[Obj], Obj], attempts: int = CONFLICT_ATTEMPTS
) -> Written:
    """As :func:`patch_status_guarded`, for the one command that edits spec (`undo`)."""
    for attempt in range(1, attempts + 1):
        obj = api.get(MODEL_DEPLOYMENT, namespace, name)
        patch = decide(obj)
        body = {**patch, "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
        try:
            written = api.patch(MODEL_DEPLOYMENT, namespace, name, body)
        except Conflict:
            if attempt == attempts:
                raise
            continue
        return Written(patch=patch, obj=written, attempts=attempt)
    raise AssertionError("unreachable")


class Deleted(Exception):
    """The followed object was deleted."""


WATCH_SECONDS = 50
"""Server-side timeout of one watch request; the feed re-watches from the last resourceVersion."""


def follow(api: CustomObjects, namespace: str, name: str) -> Iterator[Obj]:
    """The object now, then every new version of it, for ever (a watch that resumes by itself).

    Raises NotFound when it does not exist, Deleted when it goes away, KubeConnectionError when the
    API server cannot be reached.
    """
    co = client.CustomObjectsApi(api.api)
    obj = api.get(MODEL_DEPLOYMENT, namespace, name)
    yield obj
    rv = obj["metadata"]["resourceVersion"]
    while True:
        w = watch.Watch()
        try:
            for event in w.stream(
                co.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                MODEL_DEPLOYMENT.plural,
                field_selector=f"metadata.name={name}",
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
            ):
                raw: Obj = event["raw_object"]
                rv = raw.get("metadata", {}).get("resourceVersion", rv)
                if event["type"] == "DELETED":
                    raise Deleted(f"modeldeployment {namespace}/{name} was deleted")
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield raw
        except ApiException as exc:
            if exc.status != 410:
                raise _translate(api.api, exc) from exc
            # Our resourceVersion is too old for the watch cache: read the object afresh.
            obj = api.get(MODEL_DEPLOYMENT, namespace, name)
            rv = obj["metadata"]["resourceVersion"]
            yield obj
        except Deleted:
            raise
        except Exception as exc:  # urllib3/socket errors while streaming
            raise _translate(api.api, exc) from exc
        finally:
            w.stop()


class Feed:
    """:func:`follow` on a daemon thread, so the caller can wait with a timeout (deadlines, clock
    ticks for pause countdowns) and Ctrl-C stays responsive."""

    def __init__(self, api: CustomObjects, namespace: str, name: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(api, namespace, name), name="modelops-rollout-feed", daemon=True
        )
        self._thread.start()

    def _run(self, api: CustomObjects, namespace: str, name: str) -> None:
        try:
            for obj in follow(api, namespace, name):
                self._queue.put(obj)
        except BaseException as exc:
            self._queue.put(exc)

    def next(self, timeout: float | None) -> Obj | None:
        """The next version of the object, or None after ``timeout`` seconds without one.

        Re-raises what ended the feed (NotFound, Deleted, KubeConnectionError, ...).
        """
        if self._error is not None:
            raise self._error
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    def latest(self, timeout: float | None) -> Obj | None:
        """Like :meth:`next`, but skip versions already superseded in the queue; an error queued
        behind a good version is raised on the following call, after that version was shown."""
        obj = self.next(timeout)
        while obj is not None:
            try:
                newer = self.next(0)
            except BaseException as exc:
                self._error = exc
                break
            if newer is None:
                break
            obj = newer
        return obj


__all__ = [
    "CONFLICT_ATTEMPTS",
    "Deleted",
    "Feed",
    "NotFound",
    "Written",
    "follow",
    "patch_spec_guarded",
    "patch_status_guarded",
]
