"""The sandbox's workload runner and networking: what a cluster's controllers and kubelet do, for one machine.

`kube` is the async HTTP client everything here talks through (never the store directly);
`runner.WorkloadRunner` runs Deployments, ReplicaSets, Jobs, CronJobs and the pods of our image.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.sandbox.cluster.kube import ApiResource, ApiStatusError, Informer, Kube, ListResult, WorkQueue
    from modelops.sandbox.cluster.runner import PodProcess, RunnerThread, WorkloadRunner

# Imported on first use: `modelops sandbox status|down` import the supervisor module only.
_KUBE = ("ApiResource", "ApiStatusError", "Informer", "Kube", "ListResult", "WorkQueue")


def __getattr__(name: str) -> Any:
    if name in _KUBE:
        return getattr(importlib.import_module("modelops.sandbox.cluster.kube"), name)
    if name in ("PodProcess", "RunnerThread", "WorkloadRunner"):
        return getattr(importlib.import_module("modelops.sandbox.cluster.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiResource",
    "ApiStatusError",
    "Informer",
    "Kube",
    "ListResult",
    "PodProcess",
    "RunnerThread",
    "WorkQueue",
    "WorkloadRunner",
]
