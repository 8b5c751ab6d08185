"""The Job controller: pods run to completion, with parallelism/completions, back-off and deadlines.

Follows kube's job controller: pods labelled and owned as kube does, a failed pod counts toward
`backoffLimit` (default 6; under restartPolicy OnFailure container restarts count too), a new pod
after a failure waits the back-off (the runner's `restart_backoff`, doubling, at most 6 min),
`activeDeadlineSeconds`, `suspend`, `ttlSecondsAfterFinished`; status with active/ready/
succeeded/failed, startTime, completionTime and, as Kubernetes >= 1.31, SuccessCriteriaMet or
FailureTarget written before Complete or Failed. Not done: Indexed completion mode, podFailurePolicy,
successPolicy, pod-tracking finalizers (counts come from the pods still present).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.deployments import _with_nulls, controller_ref, controller_uid, owner_ref, parse_time
from modelops.sandbox.cluster.kube import ApiStatusError, Controller, Informer, Kube
from modelops.sandbox.cluster.kubelet import now_iso, post_event
from modelops.sandbox.cluster.podspec import job_backoff

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "job-controller"
JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name")


def job_finished(job: Mapping[str, Any]) -> str | None:
    """ "Complete" or "Failed" when the Job has that condition True, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def job_condition(ctype: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": ctype,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def wanted_active(parallelism: int, completions: int | None, succeeded: int) -> int:
    """How many pods should run now (kube's non-indexed Job: completions left, capped by parallelism)."""
    if completions is None:
        return parallelism if succeeded == 0 else 0
    return max(min(parallelism, completions - succeeded), 0)


class JobController(Controller):
    name = "job"

    def __init__(self, kube: Kube, informers: Mapping[str, Informer], *, backoff: float = 10.0) -> None:
        super().__init__()
        self.kube = kube
        self.jobs = informers["jobs"]
        self.pods = informers["pods"]
        self.backoff = backoff
        self._failures_seen: dict[str, tuple[int, float]] = {}  # job uid -> (failures, monotonic time seen)
        self.jobs.add_handler(lambda _t, obj, _old: self.enqueue(obj))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, _etype: str, pod: Obj, old: Obj | None) -> None:
        for obj in (pod, old):
            ref = controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "Job":
                self.queue.add((str(pod["metadata"].get("namespace") or ""), str(ref.get("name"))))

    async def reconcile(self, namespace: str, name: str) -> float | None:
        job = self.jobs.get(namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        job = copy.deepcopy(job)
        if job_finished(job):
            self._failures_seen.pop(job["metadata"]["uid"], None)
            return await self._ttl(job)
        spec = job.get("spec") or {}
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pods.items(namespace) if controller_uid(p) == uid]
        active = [
            p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
        ]
        # a pod this controller deleted ends Failed or Succeeded while it terminates: not a result
        finished = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        succeeded = sum(1 for p in finished if _phase(p) == "Succeeded")
        failed = sum(1 for p in finished if _phase(p) == "Failed")
        old_status = job.get("status") or {}
        # counts never go down when finished pods are removed by someone else
        succeeded = max(succeeded, int(old_status.get("succeeded") or 0))
        failed = max(failed, int(old_status.get("failed") or 0))
        restarts = 0
        if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
            restarts = sum(
                int(cs.get("restartCount") or 0)
                for p in active
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            )
        now = now_iso()
        status: Obj = {k2: v for k2, v in old_status.items() if k2 in ("conditions", "startTime", "completionTime")}
        conds: list[Obj] = list(status.get("conditions") or [])
        if spec.get("suspend"):
            for pod in active:
                await self._delete_pod(job, pod)
            if not any(c.get("type") == "Suspended" and c.get("status") == "True" for c in conds):
                conds = [c for c in conds if c.get("type") != "Suspended"]
                conds.append(job_condition("Suspended", "JobSuspended", "Job suspended", now))
                await post_event(self.kube, job, "Normal", "Suspended", "Job suspended", COMPONENT)
            status.update(conditions=conds, active=0, ready=0, succeeded=succeeded, failed=failed)
            await self._write(job, old_status, status)
            return None
        if any(c.get("type") == "Suspended" and c.get("status") == "True" for c in conds):
            conds = [c for c in conds if c.get("type") != "Suspended"]
            conds.append({**job_condition("Suspended", "JobResumed", "Job resumed", now), "status": "False"})
            await post_event(self.kube, job, "Normal", "Resumed", "Job resumed", COMPONENT)
            status.pop("startTime", None)
        status.setdefault("startTime", now)
        backoff_limit = _int(spec.get("backoffLimit"), 6)
        parallelism = _int(spec.get("parallelism"), 1)
        completions = spec.get("completions")
        if completions is None and spec.get("parallelism") is None:
            completions = 1
        started = parse_time(str(status["startTime"]))
        deadline = spec.get("activeDeadlineSeconds")
        elapsed = (datetime.now(UTC) - started).total_seconds() if started is not None else 0.0

        failure: tuple[str, str] | None = None
        if failed + restarts > backoff_limit:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and elapsed >= float(deadline):
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if failure is not None:
            reason, message = failure
            conds.append(job_condition("FailureTarget", reason, message, now))
            status.update(
                conditions=conds, active=len(active), ready=_ready(active), succeeded=succeeded, failed=failed
            )
            await self._write(job, old_status, status)
            for pod in active:
                await self._delete_pod(job, pod)
            failed += len(active)
            conds.append(job_condition("Failed", reason, message, now_iso()))
            new_status = {**status, "conditions": conds, "active": 0, "ready": 0, "failed": failed}
            await self._write(job, status, new_status)
            await post_event(self.kube, job, "Warning", reason, message, COMPONENT)
            return await self._ttl({**job, "status": new_status})

        done = succeeded >= completions if completions is not None else (succeeded > 0 and not active)
        if done:
            for pod in active:  # work-queue mode: extra pods end with the Job
                await self._delete_pod(job, pod)
            msg = "Reached expected number of succeeded pods"
            conds.append(job_condition("SuccessCriteriaMet", "CompletionsReached", msg, now))
            status.update(conditions=conds, active=0, ready=0, succeeded=succeeded, failed=failed)
            await self._write(job, old_status, status)
            conds.append(job_condition("Complete", "CompletionsReached", msg, now_iso()))
            new_status = {**status, "conditions": conds, "completionTime": now_iso()}
            await self._write(job, status, new_status)
            await post_event(self.kube, job, "Normal", "Completed", "Job completed", COMPONENT)
            return await self._ttl({**job, "status": new_status})

        requeue: float | None = None
        want = wanted_active(parallelism, completions, succeeded)
        if len(active) < want:
            wait = self._backoff_left(uid, failed + restarts)
            if wait > 0:
                requeue = wait
            else:
                for _ in range(want - len(active)):
                    created = await self._create_pod(job)
                    if created is None:
                        break
                    active.append(created)
        elif len(active) > want:
            for pod in active[want:]:
                await self._delete_pod(job, pod)
            active = active[:want]
        if deadline is not None:
            left = float(deadline) - elapsed + 0.05
            requeue = left if requeue is None else min(requeue, left)
        status.update(conditions=conds, active=len(active), ready=_ready(active), succeeded=succeeded, failed=failed)
        await self._write(job, old_status, status)
        return requeue

    def _backoff_left(self, uid: str, failures: int) -> float:
        """Seconds until a new pod may start after the latest failure (remembered when first seen)."""
        if failures <= 0:
            return 0.0
        seen = self._failures_seen.get(uid)
        if seen is None or seen[0] != failures:
            seen = (failures, time.monotonic())
            self._failures_seen[uid] = seen
        return job_backoff(failures, self.backoff) - (time.monotonic() - seen[1])

    async def _create_pod(self, job: Obj) -> Obj | None:
        meta, spec = job["metadata"], job.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        for key, value in zip(JOB_LABELS, (meta["uid"], meta["name"], meta["uid"], meta["name"]), strict=True):
            labels.setdefault(key, value)
        body: Obj = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta.get("namespace"),
                "labels": labels,
                "ownerReferences": [owner_ref(job)],
            },
            "spec": template.get("spec") or {},
        }
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        try:
            pod = await self.kube.create(k.PODS, meta.get("namespace"), body)
        except ApiStatusError as exc:
            if exc.code in (403, 404):
                return None
            await post_event(self.kube, job, "Warning", "FailedCreate", f"Error creating: {exc.message}", COMPONENT)
            raise
        self.pods.upsert(pod)
        await post_event(
            self.kube, job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", COMPONENT
        )
        return pod

    async def _delete_pod(self, job: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            self.pods.deleted(
                await self.kube.delete(k.PODS, meta.get("namespace"), meta["name"], preconditions={"uid": meta["uid"]})
            )
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
            self.pods.discard(meta.get("namespace"), meta["name"])
        await post_event(self.kube, job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}", COMPONENT)

    async def _write(self, job: Obj, old: Obj, status: Obj) -> None:
        status = {key: v for key, v in status.items() if not (key in ("active", "succeeded", "failed") and v == 0)}
        status.setdefault("uncountedTerminatedPods", {})
        if status.get("conditions") == []:
            status.pop("conditions")
        if status == old:
            return
        meta = job["metadata"]
        out = await self.kube.patch(
            k.JOBS, meta.get("namespace"), meta["name"], {"status": _with_nulls(old, status)}, subresource="status"
        )
        self.jobs.upsert(out)
        job["status"] = out.get("status") or status

    async def _ttl(self, job: Obj) -> float | None:
        """Delete a finished Job (and its pods) ttlSecondsAfterFinished after it finished."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        status = job.get("status") or {}
        finished_at = status.get("completionTime") or next(
            (
                c.get("lastTransitionTime")
                for c in status.get("conditions") or []
                if c.get("type") in ("Complete", "Failed")
            ),
            None,
        )
        at = parse_time(str(finished_at or ""))
        left = float(ttl) - ((datetime.now(UTC) - at).total_seconds() if at is not None else 0.0)
        if left > 0:
            return left + 0.05
        meta = job["metadata"]
        try:
            await self.kube.delete(
                k.JOBS, meta.get("namespace"), meta["name"], propagation_policy="Foreground",
                preconditions={"uid": meta["uid"]},
            )  # fmt: skip
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
        return None


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _ready(pods: list[Obj]) -> int:
    return sum(
        1
        for p in pods
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )
