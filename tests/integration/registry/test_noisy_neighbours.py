"""Noisy neighbours: ModelVersions whose store accepts connections and never answers delay no one.

Ten versions hang on such a store (the read-progress timeout is set far beyond the test, so their
first reads are still in flight at every assertion); a good version is verified, and a
DriftMonitor and a ModelDeployment get their status, while all ten reads still hang. Before the
verifier was asynchronous the ten reads held the operator's eight handler workers, and everything
else waited for the ~30 s timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops.artifact_verifier import FetchSettings
from modelops.core.artifact_policy import ArtifactPolicy
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects
from modelops.runner import OperatorConfig, OperatorThread
from tests.integration.registry.conftest import model_version, status, wait_for
from tests.support.artifact_servers import HangingServer

HANGING = 10
NOT_A_DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def slow_store(kubeconfig: Path) -> Iterator[HangingServer]:
    """The hanging store and an operator whose reads wait 10 minutes for a byte; the store is
    closed before the operator stops, so the hanging reads end at once."""
    store = HangingServer().start()
    cfg = OperatorConfig(
        namespaces=["default"],
        kubeconfig=str(kubeconfig),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),
        artifact_fetch=FetchSettings(read_timeout=600),
    )
    op = OperatorThread(cfg).start()
    try:
        yield store
    finally:
        store.stop()
        op.stop()


def wait_until(pred: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_hanging_store_delays_no_other_version_nor_kind(
    slow_store: HangingServer, custom_objects: CustomObjects, artifact: Any, tmp_path: Path
) -> None:
    for i in range(HANGING):
        uri = f"{slow_store.url}/models/m{i}.joblib"
        custom_objects.create(MODEL_VERSION, "default", model_version(f"slow-{i}", uri, NOT_A_DIGEST, version=str(i)))
    # all ten reads are in flight at once: none waits for a worker another one holds
    wait_until(lambda: slow_store.open_connections() == HANGING, f"{HANGING} connections to the slow store")

    uri, digest = artifact(b"good model bytes")
    custom_objects.create(MODEL_VERSION, "default", model_version("good", uri, digest, version="100"))
    good = wait_for(custom_objects, "good", lambda o: status(o).get("phase") in ("Verified", "Failed"))
    assert status(good)["phase"] == "Verified"

    ref = tmp_path / "ref.csv"
    ref.write_text("x\n1\n2\n")
    custom_objects.create(
        DRIFT_MONITOR,
        "default",
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "dm"},
            "spec": {
                "target": {"modelVersion": "good"},
                "schedule": "0 * * * *",
                "reference": {"uri": str(ref)},
                "current": {"source": "uri", "uri": str(ref)},
            },
        },
    )
    custom_objects.create(
        MODEL_DEPLOYMENT,
        "default",
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "md"},
            "spec": {"model": {"versionRef": "good"}, "replicas": 1},
        },
    )
    for kind, name in ((DRIFT_MONITOR, "dm"), (MODEL_DEPLOYMENT, "md")):
        wait_until(
            lambda kind=kind, name=name: (
                (custom_objects.get(kind, "default", name).get("status") or {}).get("observedGeneration") == 1
            ),
            f"{name}'s status",
        )

    # ...and the ten reads are all still in their first attempt
    assert slow_store.open_connections() == HANGING
    for i in range(HANGING):
        slow = status(custom_objects.get(MODEL_VERSION, "default", f"slow-{i}"))
        assert slow.get("verifyAttempts") is None, slow
        assert slow.get("phase") in (None, "Pending"), slow
