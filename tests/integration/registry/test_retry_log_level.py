"""An artifact not reachable yet is a routine retry: kopf's log of it is a WARNING, not an ERROR."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest

from modelops.k8s.resources import MODEL_VERSION
from tests.integration.registry.conftest import cond, model_version, wait_event, wait_for

pytestmark = pytest.mark.usefixtures("operator")


def test_unreachable_artifact_retry_is_logged_at_warning(custom_objects, core_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kopf.objects")
    missing = tmp_path / "not-yet.joblib"
    digest = "sha256:" + hashlib.sha256(b"later").hexdigest()
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-retry", missing.as_uri(), digest))
    wait_for(custom_objects, "churn-retry", lambda o: cond(o, "Ready").get("reason") == "ArtifactUnreachable")
    wait_event(core_api, "churn-retry", "ArtifactUnreachable")

    def retries() -> list[logging.LogRecord]:  # kopf logs the retry just after our Event is posted
        return [r for r in caplog.records if r.name == "kopf.objects" and "failed temporarily" in r.getMessage()]

    deadline = time.monotonic() + 10
    while not retries() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert retries(), [r.getMessage() for r in caplog.records if r.name == "kopf.objects"]
    assert {r.levelname for r in retries()} == {"WARNING"}
    assert not [r.getMessage() for r in caplog.records if r.name == "kopf.objects" and r.levelno >= logging.ERROR]
