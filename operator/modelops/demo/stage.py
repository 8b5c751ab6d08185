"""Shared plumbing of the demo: the narrator, the clients, waiting for what the operator does.

The demo acts only as a user would (creates objects, approves versions, sends traffic, runs
`modelops` commands) and watches; every decision on screen is the operator's, read from status,
Events and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from modelops.demo import view
from modelops.k8s.resources import CustomKind, CustomObjects, NotFound

Obj = dict[str, Any]


class DemoFailure(Exception):
    """The demo saw something other than what it shows: it exits non-zero with this one line."""


@dataclass
class Stage:
    """What every step needs: the clients, the sandbox's paths, the clock of the narration."""

    api: CustomObjects
    core: client.CoreV1Api
    kubeconfig: str
    values: dict[str, str]
    """${VARIABLES} of the manifests: MODELOPS_EXAMPLES (the assets), the log and models dirs, the image."""
    namespace: str = "default"
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        stamp = f"[{view.seconds(self.elapsed):>7}] "
        print(view.paragraph(text, stamp, " " * len(stamp)), flush=True)

    def note(self, text: str) -> None:
        """An indented explanation under the line above."""
        print(view.paragraph(text, " " * 12, " " * 12), flush=True)

    def heading(self, text: str) -> None:
        print(f"\n{text}\n{'-' * min(len(text), view.WIDTH)}", flush=True)

    def print(self, text: str = "") -> None:
        print(text, flush=True)

    def plain(self, obj: object) -> Obj:
        out: Obj = self.api.api.sanitize_for_serialization(obj)
        return out

    def get(self, kind: CustomKind, name: str) -> Obj | None:
        try:
            return self.api.get(kind, self.namespace, name)
        except NotFound:
            return None

    def wait_for(
        self,
        kind: CustomKind,
        name: str,
        done: Callable[[Obj], bool],
        what: str,
        timeout: float = 60,
        every: float = 0.2,
        tick: Callable[[], object] | None = None,
    ) -> Obj:
        """The object once ``done(obj)``; DemoFailure naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        obj: Obj | None = None
        while time.monotonic() < deadline:
            obj = self.get(kind, name)
            if obj is not None and done(obj):
                return obj
            if tick is not None:
                tick()
            time.sleep(every)
        state = status_of(obj or {}).get("message") or (condition(obj or {}, "Ready") or {}).get("message")
        raise DemoFailure(
            f"{kind.kind.lower()}/{name}: no {what} within {timeout:.0f}s" + (f" (it says: {state})" if state else "")
        )

    def events_for(self, name: str) -> list[Obj]:
        items = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}").items
        rows = [
            {"type": e.type, "reason": e.reason, "message": e.message, "at": str(e.last_timestamp or e.event_time)}
            for e in items
        ]
        return sorted(rows, key=lambda e: e["at"])


def status_of(obj: Obj) -> Obj:
    status: Obj = obj.get("status") or {}
    return status


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in status_of(obj).get("conditions") or [] if c.get("type") == type_), None)
