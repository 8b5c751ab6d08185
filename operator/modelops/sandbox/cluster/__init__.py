"""The sandbox's workload runner and networking: what a cluster's controllers and kubelet do, for one machine.

`kube` is the async HTTP client everything here talks through (never the store directly);
`runner.WorkloadRunner` runs Deployments, ReplicaSets, Jobs, CronJobs and the pods of our image.
"""

from __future__ import annotations

from modelops.sandbox.cluster.kube import ApiResource, ApiStatusError, Informer, Kube, ListResult, WorkQueue
from modelops.sandbox.cluster.runner import PodProcess, RunnerThread, WorkloadRunner

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
