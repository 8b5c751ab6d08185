"""The operator in-process against the fake API server, plus helpers to register artifacts."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_VERSION, CustomObjects

Obj = dict[str, Any]


@pytest.fixture
def core_api(kubeconfig: str) -> client.CoreV1Api:
    return client.CoreV1Api(load_api_client(str(kubeconfig)))


@pytest.fixture
def artifact(tmp_path: Path) -> Callable[[bytes], tuple[str, str]]:
    """Write bytes to a file; return (file URI, sha256 digest)."""

    def make(data: bytes, name: str = "model.joblib") -> tuple[str, str]:
        path = tmp_path / name
        path.write_bytes(data)
        return path.as_uri(), "sha256:" + hashlib.sha256(data).hexdigest()

    return make


def model_version(name: str, uri: str, digest: str, model: str = "churn", version: str = "1", **spec: Any) -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"modelName": model, "version": version, "artifact": {"uri": uri, "digest": digest}, **spec},
    }


def wait_for(api: CustomObjects, name: str, pred: Callable[[Obj], bool], timeout: float = 20.0) -> Obj:
    deadline = time.monotonic() + timeout
    obj: Obj = {}
    while time.monotonic() < deadline:
        obj = api.get(MODEL_VERSION, "default", name)
        if pred(obj):
            return obj
        time.sleep(0.05)
    raise AssertionError(f"timed out; last status: {obj.get('status')}")


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def cond(obj: Obj, type_: str) -> Obj:
    return next((c for c in status(obj).get("conditions", []) if c["type"] == type_), {})


def events(core: client.CoreV1Api, name: str) -> list[Any]:
    return core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items


def wait_event(core: client.CoreV1Api, name: str, reason: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in events(core, name):
            if ev.reason == reason:
                return ev
        time.sleep(0.1)
    raise AssertionError(f"no {reason} event for {name}: {[e.reason for e in events(core, name)]}")
