"""Deployment and ReplicaSet controllers, following kube-controller-manager's sync logic.

Deployment -> ReplicaSet `<deploy>-<pod-template-hash>` -> Pods `<rs>-<5 chars>`; rolling updates
by maxSurge/maxUnavailable (old pods scaled down only as new ones become available), Recreate,
revision annotations, history cleanup, status and the Available/Progressing conditions with
kube's reasons and messages. Not done: proportional scaling of several ReplicaSets in the middle
of a rollout (the newest takes the change), adoption of orphaned ReplicaSets/Pods.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.kube import ApiStatusError, Controller, Informer, Kube
from modelops.sandbox.cluster.kubelet import now_iso, post_event
from modelops.sandbox.cluster.podspec import int_or_percent

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
COMPONENT = "deployment-controller"
SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
# annotations of a Deployment not copied to its ReplicaSets (kube's skipCopyAnnotation)
_SKIP_ANNOTATIONS = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}


# -- pure ------------------------------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString: no vowels, no confusable characters."""
    return "".join(SAFE_ALPHANUMS[ord(ch) % len(SAFE_ALPHANUMS)] for ch in text)


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The `pod-template-hash` of a pod template: FNV-32a, then kube's safe encoding of its decimal.

    kube hashes the Go struct's printed form; we hash canonical JSON (the template without its own
    hash label), so the value is stable across restarts and equal templates give equal names.
    """
    tpl = _without_hash(template)
    data = json.dumps(tpl, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def _without_hash(template: Mapping[str, Any]) -> Obj:
    tpl = copy.deepcopy(dict(template))
    labels = (tpl.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            tpl["metadata"].pop("labels")
    if "metadata" in tpl and not tpl["metadata"]:
        tpl.pop("metadata")
    return tpl


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """kube's EqualIgnoreHash: two pod templates equal but for the pod-template-hash label."""
    return _without_hash(a) == _without_hash(b)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable) of a rolling update: surge rounds up, unavailable down, never both 0."""
    surge = int_or_percent("25%" if max_surge is None else max_surge, desired, round_up=True)
    unavailable = int_or_percent("25%" if max_unavailable is None else max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_rs_replicas(desired: int, surge: int, all_replicas: int, new_replicas: int) -> int:
    """Replicas of the new ReplicaSet in a rolling update (kube's NewRSNewReplicas)."""
    max_total = desired + surge
    if all_replicas >= max_total:
        return new_replicas
    scale_up = min(max_total - all_replicas, desired - new_replicas)
    return new_replicas + max(scale_up, 0)


def pods_to_delete(pods: Sequence[Mapping[str, Any]], count: int) -> list[Mapping[str, Any]]:
    """Which pods a ReplicaSet scaling down deletes first (kube's ActivePodsWithRanks, one node).

    Pending before Running, not ready before ready, ready for less time first, more restarts
    first, newer first.
    """
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}

    def key(pod: Mapping[str, Any]) -> tuple[int, int, str, int, str]:
        status = pod.get("status") or {}
        ready = _ready_condition(pod)
        is_ready = ready is not None and ready.get("status") == "True"
        since = str(ready.get("lastTransitionTime") or "") if is_ready and ready else ""
        restarts = sum(int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or [])
        created = str((pod.get("metadata") or {}).get("creationTimestamp") or "")
        return (
            phase_rank.get(str(status.get("phase") or "Pending"), 0),
            1 if is_ready else 0,
            _neg(since),
            -restarts,
            _neg(created),
        )

    return sorted(pods, key=key)[: max(count, 0)]


def _neg(ts: str) -> str:
    """Sort key putting later timestamps first (ISO strings of equal length)."""
    return "".join(chr(0x10FFFF - ord(c)) for c in ts) if ts else ""


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> tuple[bool, float]:
    """Ready for at least minReadySeconds; when ready but not yet available, the seconds left."""
    ready = _ready_condition(pod)
    if ready is None or ready.get("status") != "True":
        return False, 0.0
    if min_ready_seconds <= 0:
        return True, 0.0
    since = parse_time(str(ready.get("lastTransitionTime") or ""))
    if since is None:
        return True, 0.0
    left = min_ready_seconds - (now - since).total_seconds()
    return (left <= 0), max(left, 0.0)


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def set_condition(conditions: list[Obj], new: Obj) -> bool:
    """kube's SetDeploymentCondition: no change when type, status and reason are equal; the
    transition time is kept while the status does not change; the condition goes last."""
    current = next((c for c in conditions if c.get("type") == new["type"]), None)
    if current is not None and current.get("status") == new["status"] and current.get("reason") == new.get("reason"):
        return False
    if current is not None and current.get("status") == new["status"]:
        new["lastTransitionTime"] = current.get("lastTransitionTime")
    conditions[:] = [c for c in conditions if c.get("type") != new["type"]] + [new]
    return True


def _cond(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _omit_zero(status: Obj, keys: Sequence[str]) -> Obj:
    """kube's `omitempty` ints: a zero count is absent from the JSON, not 0."""
    return {key: v for key, v in status.items() if not (key in keys and v == 0)}


# -- shared helpers --------------------------------------------------------------------------


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: Mapping[str, Any]) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replicas_of(obj: Mapping[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _status_int(obj: Mapping[str, Any], key: str) -> int:
    return int((obj.get("status") or {}).get(key) or 0)


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def _is_active_pod(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _running(pod: Mapping[str, Any]) -> bool:
    """kube's oldPodsRunning: a pod not in a terminal phase may run, even while it terminates."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


# -- ReplicaSet controller -------------------------------------------------------------------


class ReplicaSetController(Controller):
    """Keeps `spec.replicas` pods of each ReplicaSet and reports its status."""

    name = "replicaset"

    def __init__(self, kube: Kube, informers: Mapping[str, Informer]) -> None:
        super().__init__()
        self.kube = kube
        self.rs = informers["replicasets"]
        self.pods = informers["pods"]
        self.rs.add_handler(lambda _t, obj, _old: self.enqueue(obj))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, _etype: str, pod: Obj, old: Obj | None) -> None:
        for obj in (pod, old):
            ref = controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "ReplicaSet":
                self.queue.add((str(pod["metadata"].get("namespace") or ""), str(ref.get("name"))))

    def owned_pods(self, rs: Mapping[str, Any]) -> list[Obj]:
        uid = rs["metadata"]["uid"]
        ns = rs["metadata"].get("namespace")
        return [p for p in self.pods.items(ns) if controller_uid(p) == uid]

    async def reconcile(self, namespace: str, name: str) -> float | None:
        rs = self.rs.get(namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        active = [p for p in self.owned_pods(rs) if _is_active_pod(p)]
        want = replicas_of(rs)
        diff = len(active) - want
        if diff < 0:
            for _ in range(-diff):
                created = await self._create_pod(rs)
                if created is None:
                    break
                active.append(created)
        elif diff > 0:
            for pod in pods_to_delete(active, diff):
                meta = pod["metadata"]
                try:
                    self.pods.deleted(
                        await self.kube.delete(k.PODS, namespace, meta["name"], preconditions={"uid": meta["uid"]})
                    )
                except ApiStatusError as exc:
                    if exc.code not in (404, 409):
                        raise
                    self.pods.discard(namespace, meta["name"])
                active = [p for p in active if p["metadata"]["uid"] != meta["uid"]]
                await post_event(self.kube, rs, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}",
                                 "replicaset-controller")  # fmt: skip
        return await self._update_status(rs, active)

    async def _create_pod(self, rs: Obj) -> Obj | None:
        meta = rs["metadata"]
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        body: Obj = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta.get("namespace"),
                "labels": dict(tmeta.get("labels") or {}),
                "ownerReferences": [owner_ref(rs)],
            },
            "spec": template.get("spec") or {},
        }
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        if tmeta.get("finalizers"):
            body["metadata"]["finalizers"] = list(tmeta["finalizers"])
        try:
            pod = await self.kube.create(k.PODS, meta.get("namespace"), body)
        except ApiStatusError as exc:
            if exc.code in (403, 404):  # namespace terminating or gone
                return None
            await post_event(self.kube, rs, "Warning", "FailedCreate", f"Error creating: {exc.message}",
                             "replicaset-controller")  # fmt: skip
            raise
        self.pods.upsert(pod)
        await post_event(self.kube, rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                         "replicaset-controller")  # fmt: skip
        return pod

    async def _update_status(self, rs: Obj, active: list[Obj]) -> float | None:
        spec = rs.get("spec") or {}
        tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        ready = available = labeled = 0
        wait: float | None = None
        for pod in active:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if all(labels.get(key) == v for key, v in tlabels.items()):
                labeled += 1
            cond = _ready_condition(pod)
            if cond is not None and cond.get("status") == "True":
                ready += 1
            ok, left = pod_available(pod, min_ready, now)
            if ok:
                available += 1
            elif left > 0:
                wait = left if wait is None else min(wait, left)
        old = rs.get("status") or {}
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation") or 0,
        }
        status = {
            "replicas": len(active),
            **_omit_zero(status, ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")),
        }
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if status != old:
            meta = rs["metadata"]
            out = await self.kube.patch(
                k.REPLICASETS, meta.get("namespace"), meta["name"], {"status": _with_nulls(old, status)},
                subresource="status",
            )  # fmt: skip
            self.rs.upsert(out)
        return None if wait is None else wait + 0.05


# -- Deployment controller -------------------------------------------------------------------


class DeploymentController(Controller):
    """Rolls Deployments out through ReplicaSets and reports their status and conditions."""

    name = "deployment"

    def __init__(self, kube: Kube, informers: Mapping[str, Informer]) -> None:
        super().__init__()
        self.kube = kube
        self.deployments = informers["deployments"]
        self.rs = informers["replicasets"]
        self.pods = informers["pods"]
        self.deployments.add_handler(lambda _t, obj, _old: self.enqueue(obj))
        self.rs.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)

    def _on_rs(self, _etype: str, rs: Obj, old: Obj | None) -> None:
        for obj in (rs, old):
            ref = controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "Deployment":
                self.queue.add((str(rs["metadata"].get("namespace") or ""), str(ref.get("name"))))

    def _on_pod(self, etype: str, pod: Obj, _old: Obj | None) -> None:
        # only Recreate waits on pods (old ones gone before new ones start)
        if etype != "DELETED" and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        ns = str(pod["metadata"].get("namespace") or "")
        rs = self.rs.get(ns, str(ref.get("name")))
        dref = controller_ref(rs) if rs is not None else None
        if dref is not None and dref.get("kind") == "Deployment":
            self.queue.add((ns, str(dref.get("name"))))

    def owned_rs(self, d: Mapping[str, Any]) -> list[Obj]:
        uid = d["metadata"]["uid"]
        return [rs for rs in self.rs.items(d["metadata"].get("namespace")) if controller_uid(rs) == uid]

    async def reconcile(self, namespace: str, name: str) -> float | None:
        d = self.deployments.get(namespace, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return None
        d = copy.deepcopy(d)
        spec = d.get("spec") or {}
        rs_list = self.owned_rs(d)
        if spec.get("paused"):
            return await self._sync_status(d, rs_list, self._find_new(d, rs_list), paused=True)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return await self._recreate(d, rs_list)
        return await self._rolling(d, rs_list)

    # -- rollouts -----------------------------------------------------------------------------

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        template = (d.get("spec") or {}).get("template") or {}
        matches = [rs for rs in rs_list if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template)]
        matches.sort(key=lambda rs: (str(rs["metadata"].get("creationTimestamp") or ""), rs["metadata"]["name"]))
        return matches[0] if matches else None

    def _surge_unavailable(self, d: Obj) -> tuple[int, int]:
        spec = d.get("spec") or {}
        desired = replicas_of(d)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge, unavailable = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), desired)
        return surge, min(unavailable, desired)

    async def _rolling(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs = self._find_new(d, rs_list)
        old = [rs for rs in rs_list if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        desired = replicas_of(d)
        surge, max_unavailable = self._surge_unavailable(d)
        all_replicas = sum(replicas_of(rs) for rs in rs_list)
        if new_rs is None:
            new_rs = await self._create_new_rs(d, old, new_rs_replicas(desired, surge, all_replicas, 0))
            if new_rs is None:
                return 0.1
            return await self._sync_status(d, [*old, new_rs], new_rs)
        new_rs = await self._sync_revision(d, new_rs, old)
        # scale the new ReplicaSet up (or down to the desired count)
        current = replicas_of(new_rs)
        if current > desired:
            await self._scale(d, new_rs, desired)
            return await self._sync_status(d, self.owned_rs(d), new_rs)
        target = new_rs_replicas(desired, surge, all_replicas, current)
        if target != current:
            await self._scale(d, new_rs, target)
            return await self._sync_status(d, self.owned_rs(d), new_rs)
        # then scale old ones down as far as availability allows
        if await self._scale_down_old(d, new_rs, old, max_unavailable):
            return await self._sync_status(d, self.owned_rs(d), new_rs)
        if self._complete(d, self._calculate(d, rs_list, new_rs)):
            await self._cleanup(d, old)
        return await self._sync_status(d, rs_list, new_rs)

    async def _scale_down_old(self, d: Obj, new_rs: Obj, old: list[Obj], max_unavailable: int) -> bool:
        old_count = sum(replicas_of(rs) for rs in old)
        if old_count == 0:
            return False
        desired = replicas_of(d)
        all_rs = [*old, new_rs]
        all_count = sum(replicas_of(rs) for rs in all_rs)
        min_available = desired - max_unavailable
        new_unavailable = replicas_of(new_rs) - _status_int(new_rs, "availableReplicas")
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_sorted = sorted(
            old, key=lambda rs: (str(rs["metadata"].get("creationTimestamp") or ""), rs["metadata"]["name"])
        )
        scaled = 0
        # first the unhealthy replicas of old ReplicaSets (they cost no availability)
        for rs in old_sorted:
            if scaled >= max_scaled_down:
                break
            want, avail = replicas_of(rs), _status_int(rs, "availableReplicas")
            if want == 0 or want == avail:
                continue
            n = min(max_scaled_down - scaled, want - avail)
            await self._scale(d, rs, want - n)
            rs.setdefault("spec", {})["replicas"] = want - n
            scaled += n
        # then healthy ones, keeping minAvailable
        available = sum(_status_int(rs, "availableReplicas") for rs in all_rs)
        if available > min_available:
            total = available - min_available
            done = 0
            for rs in old_sorted:
                if done >= total:
                    break
                want = replicas_of(rs)
                if want == 0:
                    continue
                n = min(want, total - done)
                await self._scale(d, rs, want - n)
                rs.setdefault("spec", {})["replicas"] = want - n
                done += n
            scaled += done
        return scaled > 0

    async def _recreate(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs = self._find_new(d, rs_list)
        old = [rs for rs in rs_list if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        scaled = False
        for rs in old:
            if replicas_of(rs) > 0:
                await self._scale(d, rs, 0)
                scaled = True
        if scaled:
            return await self._sync_status(d, self.owned_rs(d), new_rs)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        ns = d["metadata"].get("namespace")
        if any(controller_uid(p) in old_uids and _running(p) for p in self.pods.items(ns)):
            return await self._sync_status(d, rs_list, new_rs)
        desired = replicas_of(d)
        if new_rs is None:
            new_rs = await self._create_new_rs(d, old, desired)
            if new_rs is None:
                return 0.1
            return await self._sync_status(d, [*old, new_rs], new_rs)
        new_rs = await self._sync_revision(d, new_rs, old)
        if replicas_of(new_rs) != desired:
            await self._scale(d, new_rs, desired)
            return await self._sync_status(d, self.owned_rs(d), new_rs)
        if self._complete(d, self._calculate(d, rs_list, new_rs)):
            await self._cleanup(d, old)
        return await self._sync_status(d, rs_list, new_rs)

    # -- ReplicaSets --------------------------------------------------------------------------

    def _rs_annotations(self, d: Obj, revision: int, replicas_annotations: bool = True) -> dict[str, str]:
        annotations = {
            key: v for key, v in ((d["metadata"].get("annotations") or {}).items()) if key not in _SKIP_ANNOTATIONS
        }
        annotations[REVISION] = str(revision)
        if replicas_annotations:
            surge, _ = self._surge_unavailable(d)
            strategy = ((d.get("spec") or {}).get("strategy") or {}).get("type")
            annotations[DESIRED_REPLICAS] = str(replicas_of(d))
            annotations[MAX_REPLICAS] = str(replicas_of(d) + (0 if strategy == "Recreate" else surge))
        return annotations

    async def _create_new_rs(self, d: Obj, old: list[Obj], replicas: int) -> Obj | None:
        meta, spec = d["metadata"], d.get("spec") or {}
        ns = meta.get("namespace")
        collisions = (d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        h = pod_template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        revision = max((_revision(rs) for rs in old), default=0) + 1
        name = f"{meta['name']}-{h}"
        body: Obj = {
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": self._rs_annotations(d, revision),
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            rs = await self.kube.create(k.REPLICASETS, ns, body)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.kube.get(k.REPLICASETS, ns, name)
            self.rs.upsert(existing)
            if controller_uid(existing) == meta["uid"] and equal_ignore_hash(
                (existing.get("spec") or {}).get("template") or {}, spec.get("template") or {}
            ):
                return existing
            # a hash collision: bump collisionCount, the next sync picks another name
            status = dict(d.get("status") or {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            out = await self.kube.patch(k.DEPLOYMENTS, ns, meta["name"], {"status": status}, subresource="status")
            self.deployments.upsert(out)
            return None
        self.rs.upsert(rs)
        if replicas > 0:
            await post_event(self.kube, d, "Normal", "ScalingReplicaSet",
                             f"Scaled up replica set {name} from 0 to {replicas}", COMPONENT)  # fmt: skip
        await self._set_deployment_revision(d, revision)
        if self._has_deadline(d):
            status = copy.deepcopy(d.get("status") or {})
            conds = list(status.get("conditions") or [])
            set_condition(
                conds,
                _cond("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"', now_iso()),
            )
            status["conditions"] = conds
            out = await self.kube.patch(
                k.DEPLOYMENTS, ns, meta["name"], {"status": {"conditions": conds}}, subresource="status"
            )
            self.deployments.upsert(out)
            d["status"] = out.get("status") or status
        return rs

    async def _sync_revision(self, d: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
        """The new ReplicaSet's revision is above every old one's; the Deployment carries it too."""
        max_old = max((_revision(rs) for rs in old), default=0)
        revision = max_old + 1 if _revision(new_rs) <= max_old else _revision(new_rs)
        annotations = dict(new_rs["metadata"].get("annotations") or {})
        wanted = {**annotations, **self._rs_annotations(d, revision)}
        if wanted != annotations:
            meta = new_rs["metadata"]
            new_rs = await self.kube.patch(
                k.REPLICASETS, meta.get("namespace"), meta["name"], {"metadata": {"annotations": wanted}}
            )
            self.rs.upsert(new_rs)
        await self._set_deployment_revision(d, revision)
        return new_rs

    async def _set_deployment_revision(self, d: Obj, revision: int) -> None:
        meta = d["metadata"]
        if (meta.get("annotations") or {}).get(REVISION) == str(revision):
            return
        out = await self.kube.patch(
            k.DEPLOYMENTS, meta.get("namespace"), meta["name"], {"metadata": {"annotations": {REVISION: str(revision)}}}
        )
        self.deployments.upsert(out)
        d["metadata"] = out["metadata"]

    async def _scale(self, d: Obj, rs: Obj, replicas: int) -> None:
        meta = rs["metadata"]
        old = replicas_of(rs)
        annotations = {**(meta.get("annotations") or {})}
        revision = _revision(rs)
        extra = self._rs_annotations(d, revision)
        annotations[DESIRED_REPLICAS] = extra[DESIRED_REPLICAS]
        annotations[MAX_REPLICAS] = extra[MAX_REPLICAS]
        out = await self.kube.patch(
            k.REPLICASETS,
            meta.get("namespace"),
            meta["name"],
            {
                "metadata": {"annotations": annotations, "resourceVersion": meta.get("resourceVersion")},
                "spec": {"replicas": replicas},
            },
        )
        self.rs.upsert(out)
        if old != replicas:
            verb = "up" if replicas > old else "down"
            await post_event(self.kube, d, "Normal", "ScalingReplicaSet",
                             f"Scaled {verb} replica set {meta['name']} from {old} to {replicas}", COMPONENT)  # fmt: skip

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit (default 10), oldest revision first."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        cleanable = [
            rs
            for rs in old
            if replicas_of(rs) == 0
            and _status_int(rs, "replicas") == 0
            and not rs["metadata"].get("deletionTimestamp")
            and int(rs["metadata"].get("generation") or 0) <= _status_int(rs, "observedGeneration")
        ]
        excess = len(cleanable) - limit
        if excess <= 0:
            return
        cleanable.sort(key=lambda rs: (_revision(rs), str(rs["metadata"].get("creationTimestamp") or "")))
        for rs in cleanable[:excess]:
            meta = rs["metadata"]
            try:
                await self.kube.delete(k.REPLICASETS, meta.get("namespace"), meta["name"])
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
            self.rs.discard(meta.get("namespace"), meta["name"])

    # -- status -------------------------------------------------------------------------------

    @staticmethod
    def _has_deadline(d: Obj) -> bool:
        value = (d.get("spec") or {}).get("progressDeadlineSeconds")
        return value is None or int(value) != 2**31 - 1  # not defaulted yet: kube's default 600

    @staticmethod
    def _deadline(d: Obj) -> int:
        value = (d.get("spec") or {}).get("progressDeadlineSeconds")
        return 600 if value is None else int(value)

    def _calculate(self, d: Obj, rs_list: list[Obj], new_rs: Obj | None) -> Obj:
        desired = replicas_of(d)
        _, max_unavailable = self._surge_unavailable(d)
        available = sum(_status_int(rs, "availableReplicas") for rs in rs_list)
        total_spec = sum(replicas_of(rs) for rs in rs_list)
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation") or 0,
            "replicas": sum(_status_int(rs, "replicas") for rs in rs_list),
            "updatedReplicas": _status_int(new_rs, "replicas") if new_rs is not None else 0,
            "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in rs_list),
            "availableReplicas": available,
            "unavailableReplicas": max(total_spec - available, 0),
        }
        collisions = (d.get("status") or {}).get("collisionCount")
        if collisions is not None:
            status["collisionCount"] = collisions
        conds = copy.deepcopy(list((d.get("status") or {}).get("conditions") or []))
        now = now_iso()
        if available >= desired - max_unavailable:
            set_condition(
                conds,
                _cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now),
            )
        else:
            set_condition(
                conds,
                _cond(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    now,
                ),
            )
        status["conditions"] = conds
        return status

    @staticmethod
    def _complete(d: Obj, status: Obj) -> bool:
        desired = replicas_of(d)
        return bool(
            status.get("updatedReplicas", 0) == desired
            and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status.get("observedGeneration", 0) >= (d["metadata"].get("generation") or 0)
        )

    async def _sync_status(self, d: Obj, rs_list: list[Obj], new_rs: Obj | None, paused: bool = False) -> float | None:
        old_status = d.get("status") or {}
        status = self._calculate(d, rs_list, new_rs)
        conds: list[Obj] = status["conditions"]
        now = now_iso()
        requeue: float | None = None
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
        if paused:
            if self._has_deadline(d):
                set_condition(conds, _cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now))
        elif not self._has_deadline(d):
            conds[:] = [c for c in conds if c.get("type") != "Progressing"]
        else:
            current = next((c for c in conds if c.get("type") == "Progressing"), None)
            complete_before = (
                status["replicas"] == status["updatedReplicas"]
                and current is not None
                and current.get("reason") == "NewReplicaSetAvailable"
            )
            if not complete_before:
                if self._complete(d, status):
                    msg = (
                        f'ReplicaSet "{rs_name}" has successfully progressed.'
                        if rs_name
                        else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.'
                    )
                    set_condition(conds, _cond("Progressing", "True", "NewReplicaSetAvailable", msg, now))
                elif self._progressing(old_status, status):
                    new = _cond(
                        "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', now
                    )
                    if current is not None and current.get("status") == "True":
                        new["lastTransitionTime"] = current.get("lastTransitionTime")
                    conds[:] = [c for c in conds if c.get("type") != "Progressing"] + [new]
                elif current is not None and current.get("reason") != "ProgressDeadlineExceeded":
                    since = parse_time(str(current.get("lastUpdateTime") or ""))
                    if since is not None:
                        left = self._deadline(d) - (datetime.now(UTC) - since).total_seconds()
                        if left < 0:
                            set_condition(conds, _cond("Progressing", "False", "ProgressDeadlineExceeded",
                                                       f'ReplicaSet "{rs_name}" has timed out progressing.', now))  # fmt: skip
                        else:
                            requeue = left + 0.5
        status = _omit_zero(
            status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")
        )
        if status != old_status:
            meta = d["metadata"]
            out = await self.kube.patch(
                k.DEPLOYMENTS,
                meta.get("namespace"),
                meta["name"],
                {"status": _with_nulls(old_status, status)},
                subresource="status",
            )
            self.deployments.upsert(out)
        return requeue

    @staticmethod
    def _progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        def g(s: Mapping[str, Any], key: str) -> int:
            return int(s.get(key) or 0)

        old_old = g(old, "replicas") - g(old, "updatedReplicas")
        new_old = g(new, "replicas") - g(new, "updatedReplicas")
        return (
            g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or new_old < old_old
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas")
        )


def _with_nulls(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """A merge patch turning `old` into `new`: keys gone from `new` are sent as null."""
    patch: Obj = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
