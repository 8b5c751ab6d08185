"""The CronJob controller: Jobs on schedule, as kube's cronjob controller v2 creates them.

Job `<cronjob>-<scheduled minute as unix time / 60>` owned by the CronJob, annotation
`batch.kubernetes.io/cronjob-scheduled-timestamp`; `suspend`, `concurrencyPolicy`
(Allow/Forbid/Replace), `startingDeadlineSeconds`, `timeZone`, history limits; status `active`,
`lastScheduleTime`, `lastSuccessfulTime`. A run missed under Forbid starts late when the active Job
ends (within startingDeadlineSeconds), as in kube.

The clock: one cron minute lasts `minute_seconds` real seconds (60 by default, real time). With a
smaller value the controller runs on a virtual clock that started at the runner's start and runs
60/minute_seconds times faster; schedules, Job names, lastScheduleTime and startingDeadlineSeconds
are in that clock, and everything else (Jobs, pods) runs for real.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.cron import CronError, Schedule, parse
from modelops.sandbox.cluster.deployments import _with_nulls, controller_ref, controller_uid, owner_ref, parse_time
from modelops.sandbox.cluster.jobs import job_finished
from modelops.sandbox.cluster.kube import ApiStatusError, Controller, Informer, Kube
from modelops.sandbox.cluster.kubelet import post_event

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_name(cronjob: str, scheduled: datetime) -> str:
    """kube's getJobName: the CronJob name and the scheduled time in minutes since the epoch."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def most_recent(
    schedule: Schedule, earliest: datetime, now: datetime, tz: tzinfo | None
) -> tuple[datetime | None, int]:
    """The latest scheduled time in (earliest, now] and how many there were (kube warns past 100)."""
    times = schedule.times_between(earliest, now, tz, limit=1000)
    if len(times) == 1000:  # far behind: only the last day can still matter for the latest one
        later = schedule.times_between(max(earliest, now - timedelta(days=1)), now, tz, limit=2000)
        return (later[-1] if later else times[-1]), 1000
    return (times[-1] if times else None), len(times)


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VirtualClock:
    """Real time sped up `60 / minute_seconds` times from `origin` (identity when minute_seconds is 60)."""

    def __init__(self, minute_seconds: float, origin: float | None = None) -> None:
        self.speed = 60.0 / minute_seconds
        self.origin = time.time() if origin is None else origin

    def to_virtual(self, real: float) -> float:
        return self.origin + (real - self.origin) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.to_virtual(time.time()), UTC)

    def real_delay(self, virtual_seconds: float) -> float:
        return max(virtual_seconds / self.speed, 0.0)


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, kube: Kube, informers: Mapping[str, Informer], *, minute_seconds: float = 60.0) -> None:
        super().__init__()
        self.kube = kube
        self.cronjobs = informers["cronjobs"]
        self.jobs = informers["jobs"]
        self.clock = VirtualClock(minute_seconds)
        self._reported: set[tuple[str, str]] = set()
        self._forbidden: dict[str, datetime] = {}
        self.cronjobs.add_handler(lambda _t, obj, _old: self.enqueue(obj))
        self.jobs.add_handler(self._on_job)

    def _on_job(self, _etype: str, job: Obj, old: Obj | None) -> None:
        for obj in (job, old):
            ref = controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "CronJob":
                self.queue.add((str(job["metadata"].get("namespace") or ""), str(ref.get("name"))))

    async def _invalid(self, cj: Obj, reason: str, message: str) -> None:
        key = (str(cj["metadata"]["uid"]), message)
        if key not in self._reported:
            self._reported.add(key)
            await post_event(self.kube, cj, "Warning", reason, message, COMPONENT)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        cj = self.cronjobs.get(namespace, name)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        cj = copy.deepcopy(cj)
        spec = cj.get("spec") or {}
        old_status = cj.get("status") or {}
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.jobs.items(namespace) if controller_uid(j) == uid]
        status: Obj = {key: v for key, v in old_status.items() if key in ("lastScheduleTime", "lastSuccessfulTime")}
        active = [j for j in jobs if not job_finished(j)]
        for j in jobs:
            if job_finished(j) == "Complete":
                done = (j.get("status") or {}).get("completionTime")
                if done and str(done) > str(status.get("lastSuccessfulTime") or ""):
                    status["lastSuccessfulTime"] = done
        await self._cleanup_history(cj, [j for j in jobs if job_finished(j)])

        tz: tzinfo | None = UTC
        if spec.get("timeZone"):
            try:
                tz = ZoneInfo(str(spec["timeZone"]))
            except (ZoneInfoNotFoundError, ValueError):
                await self._invalid(cj, "UnknownTimeZone", f"invalid timeZone: {spec['timeZone']!r}")
                await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
                return None
        try:
            schedule = parse(str(spec.get("schedule") or ""))
        except CronError as exc:
            await self._invalid(cj, "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {exc}")
            await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
            return None
        if spec.get("suspend"):
            await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
            return None

        now = self.clock.now()
        last = parse_time(str(old_status.get("lastScheduleTime") or ""))
        if last is None:
            created = parse_time(str(cj["metadata"].get("creationTimestamp") or ""))
            base = created.timestamp() if created is not None else time.time()
            last = datetime.fromtimestamp(self.clock.to_virtual(base), UTC)
        earliest = last
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent(schedule, earliest, now, tz)
        nxt = schedule.next_after(now, tz)
        requeue = self.clock.real_delay((nxt - now).total_seconds()) + 0.1 if nxt is not None else None
        if scheduled is None:
            await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
            return requeue
        if missed > 100:
            await self._invalid(cj, "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")  # fmt: skip
        policy = str(spec.get("concurrencyPolicy") or "Allow")
        if policy == "Forbid" and active:
            if self._forbidden.get(uid) != scheduled:  # one Event per skipped run, not per look
                self._forbidden[uid] = scheduled
                await post_event(self.kube, cj, "Normal", "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy is Forbid",
                                 COMPONENT)  # fmt: skip
            await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
            return requeue
        if policy == "Replace":
            for j in active:
                await self._delete_job(cj, j)
            active = []
        job = await self._create_job(cj, scheduled, tz)
        if (
            job is not None
            and not job_finished(job)
            and all(j["metadata"]["uid"] != job["metadata"]["uid"] for j in active)
        ):
            active.append(job)
        status["lastScheduleTime"] = rfc3339(scheduled)
        await self._write(cj, old_status, {**status, "active": _refs(active, old_status.get("active"))})
        return requeue

    async def _create_job(self, cj: Obj, scheduled: datetime, tz: tzinfo | None) -> Obj | None:
        meta, spec = cj["metadata"], cj.get("spec") or {}
        template = copy.deepcopy(spec.get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        local = scheduled.astimezone(tz) if tz is not None else scheduled
        annotations[SCHEDULED_ANNOTATION] = local.isoformat().replace("+00:00", "Z")
        name = job_name(meta["name"], scheduled)
        body: Obj = {
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace"),
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [owner_ref(cj)],
            },
            "spec": template.get("spec") or {},
        }
        if not body["metadata"]["labels"]:
            body["metadata"].pop("labels")
        try:
            job = await self.kube.create(k.JOBS, meta.get("namespace"), body)
        except ApiStatusError as exc:
            if exc.code == 409:  # created before (e.g. by an earlier runner): fine if it is ours
                existing = await self.kube.get(k.JOBS, meta.get("namespace"), name)
                self.jobs.upsert(existing)
                return existing if controller_uid(existing) == meta["uid"] else None
            await post_event(self.kube, cj, "Warning", "FailedCreate", f"Error creating job: {exc.message}", COMPONENT)
            raise
        self.jobs.upsert(job)
        await post_event(self.kube, cj, "Normal", "SuccessfulCreate", f"Created job {name}", COMPONENT)
        return job

    async def _delete_job(self, cj: Obj, job: Obj) -> None:
        meta = job["metadata"]
        try:
            await self.kube.delete(k.JOBS, meta.get("namespace"), meta["name"], propagation_policy="Background")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        self.jobs.discard(meta.get("namespace"), meta["name"])
        await post_event(self.kube, cj, "Normal", "SuccessfulDelete", f"Deleted job {meta['name']}", COMPONENT)

    async def _cleanup_history(self, cj: Obj, finished: list[Obj]) -> None:
        """Keep the newest successfulJobsHistoryLimit (3) / failedJobsHistoryLimit (1) finished Jobs."""
        spec = cj.get("spec") or {}
        for kind, key, default in (
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ):
            limit = spec.get(key)
            limit = default if limit is None else int(limit)
            group = [j for j in finished if job_finished(j) == kind]
            if len(group) <= limit:
                continue
            group.sort(key=_start_key)
            for j in group[: len(group) - limit]:
                await self._delete_job(cj, j)

    async def _write(self, cj: Obj, old: Obj, status: Obj) -> None:
        if not status.get("active"):
            status.pop("active", None)
        if status == old:
            return
        meta = cj["metadata"]
        out = await self.kube.patch(
            k.CRONJOBS, meta.get("namespace"), meta["name"], {"status": _with_nulls(old, status)}, subresource="status"
        )
        self.cronjobs.upsert(out)


def _start_key(job: Mapping[str, Any]) -> tuple[int, str, str]:
    """kube's byJobStartTime: Jobs without a start time last, then by start time and name."""
    start = (job.get("status") or {}).get("startTime")
    return (1 if not start else 0, str(start or ""), str(job["metadata"]["name"]))


def _refs(jobs: list[Obj], old: list[Obj] | None = None) -> list[Obj]:
    """ObjectReferences to the active Jobs; a Job already listed keeps its reference as written."""
    known = {str(r.get("uid")): r for r in old or []}
    return [
        known.get(str(j["metadata"]["uid"]))
        or {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "namespace": j["metadata"].get("namespace"),
            "name": j["metadata"]["name"],
            "uid": j["metadata"]["uid"],
            "resourceVersion": j["metadata"].get("resourceVersion"),
        }
        for j in sorted(jobs, key=lambda j: str(j["metadata"]["name"]))
    ]
