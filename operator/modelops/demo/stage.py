"""Shared plumbing of the demo acts: a narrator, the clients, waiting for status."""

from __future__ import annotations

import os
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelops.k8s.resources import CustomKind, CustomObjects

Obj = dict[str, Any]


class DemoFailure(Exception):
    """The demo saw something other than what it shows: it exits non-zero."""


@dataclass
class Stage:
    """What every act needs: the custom-object client, the core API, where examples live."""

    api: CustomObjects
    core: client.CoreV1Api
    examples: Path
    namespace: str = "default"
    started: float = 0.0

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.2f}s] {text}", flush=True)

    def heading(self, text: str) -> None:
        print(f"\n=== {text} ===", flush=True)

    def load(self, relative: str) -> Obj:
        """An example manifest with ${MODELOPS_EXAMPLES} substituted, as `envsubst` would."""
        text = (self.examples / relative).read_text()
        text = string.Template(text).safe_substitute(MODELOPS_EXAMPLES=str(self.examples), **os.environ)
        obj: Obj = yaml.safe_load(text)
        return obj

    def wait_for(self, kind: CustomKind, name: str, done: Callable[[Obj], bool], what: str, timeout: float = 30) -> Obj:
        deadline = time.monotonic() + timeout
        obj: Obj = {}
        while time.monotonic() < deadline:
            obj = self.api.get(kind, self.namespace, name)
            if done(obj):
                return obj
            time.sleep(0.05)
        raise DemoFailure(
            f"{kind.kind}/{name}: timed out after {timeout:.0f}s waiting for {what}; status={obj.get('status')}"
        )

    def events_for(self, name: str) -> list[Obj]:
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}").items
        return sorted(
            ({"type": e.type, "reason": e.reason, "message": e.message} for e in events),
            key=lambda e: str(e["reason"]),
        )

    def wait_event(self, name: str, reason: str, timeout: float = 15) -> Obj:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events_for(name):
                if ev["reason"] == reason:
                    return ev
            time.sleep(0.1)
        raise DemoFailure(f"no {reason} Event for {name} within {timeout:.0f}s")


def status_of(obj: Obj) -> Obj:
    status: Obj = obj.get("status") or {}
    return status


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in status_of(obj).get("conditions", []) if c.get("type") == type_), None)
