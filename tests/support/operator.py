"""Fixtures: the operator in-process against the fake API server, and a client for our kinds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelops.core.artifact_policy import ArtifactPolicy
from modelops.k8s.client import load_api_client
from modelops.k8s.resources import CustomObjects
from modelops.runner import OperatorConfig, OperatorThread
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def custom_objects(kubeconfig: str) -> CustomObjects:
    return CustomObjects(load_api_client(str(kubeconfig)))


@pytest.fixture
def operator(kubeconfig: str) -> Iterator[OperatorThread]:
    """The real operator (all handlers), namespace ``default``, in a thread with its own loop;
    file:// artifacts allowed, as in the sandbox."""
    cfg = OperatorConfig(
        namespaces=["default"],
        kubeconfig=str(kubeconfig),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),  # file:// artifacts, as the sandbox allows
    )
    with OperatorThread(cfg) as op:
        yield op


@pytest.fixture
def proxy(apiserver: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the fake API server: a test can hold chosen requests."""
    p = FaultProxy(apiserver.url).start()
    yield p
    p.stop()
