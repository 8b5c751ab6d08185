"""The object store behind the sandbox: API-server write semantics, watches and garbage collection.

Everything runs in one event loop, so a write is atomic without locks: validate, bump the global
resourceVersion, store, append to the bounded event log, fan out to watchers. Nothing grows with
the number of requests served: the log is a bounded deque, indexes are per live object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelops.sandbox import defaults
from modelops.sandbox import managed_fields as mf
from modelops.sandbox import schema as sch
from modelops.sandbox.builtins import builtin_causes
from modelops.sandbox.errors import ApiError, already_exists, conflict, invalid, not_found
from modelops.sandbox.meta import event_causes, metadata_causes, name_causes
from modelops.sandbox.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from modelops.sandbox.resources import BUILTINS, CRD_KEY, NAMESPACE_KEY, Resource, resources_from_crd
from modelops.sandbox.schema import Cause
from modelops.sandbox.selectors import Matcher

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (group, plural)
Ref = tuple[Key, str, str]  # (key, namespace, name)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_IGNORED_META = ("resourceVersion", "generation")  # managedFields count: an ownership change is a write
_GC_MANAGER = "kube-controller-manager"  # what kube-apiserver records for the garbage collector's writes
POD_KEY: Key = ("", "pods")
DEFAULT_POD_GRACE = 30  # kube's default spec.terminationGracePeriodSeconds

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


def now(after_seconds: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=after_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One entry of the watch log; `old` lets selector watches turn MODIFIED into ADDED/DELETED."""

    rv: int
    type: str
    key: Key
    namespace: str
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    key: Key
    namespace: str | None
    labels: Matcher
    fields: Matcher
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)

    def match(self, obj: Obj | None) -> bool:
        return obj is not None and self.labels(obj) and self.fields(obj)

    def translate(self, ev: Event) -> tuple[str, Obj] | None:
        """The event this watcher sees, given its selectors (as the watch cache computes it)."""
        if self.namespace is not None and ev.namespace != self.namespace:
            return None
        new_ok = self.match(ev.obj)
        if ev.type == "MODIFIED":
            old_ok = self.match(ev.old)
            if new_ok and old_ok:
                return ("MODIFIED", ev.obj)
            if new_ok:
                return ("ADDED", ev.obj)
            if old_ok:
                return ("DELETED", ev.obj)
            return None
        if ev.type == "DELETED" and not new_ok and self.match(ev.old):
            return ("DELETED", ev.obj)
        return (ev.type, ev.obj) if new_ok else None


@dataclass
class WriteResult:
    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    deleted: bool = True


class Store:
    """Objects of every served resource, the resourceVersion clock, the event log and watchers."""

    def __init__(
        self,
        event_log_size: int = 10_000,
        strict_crds: bool = True,
        watch_cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rv = 0
        self.strict_crds = strict_crds
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self.log: deque[Event] = deque()
        self.log_size = event_log_size
        self.log_times: deque[float] = deque()  # when each logged event happened, by `clock`
        self.watch_cache_seconds = watch_cache_seconds
        self.clock = clock
        self.compacted_rv = 0
        self.watchers: dict[Key, set[Watcher]] = {}
        self.uids: dict[str, Ref] = {}
        self.dependents: dict[str, set[Ref]] = {}
        self._gc_pending: set[Ref] = set()
        self._gc_scheduled = False
        self._owner_ref_warned: set[str] = set()  # dependents' uids with an OwnerRefInvalidNamespace Event
        for res in BUILTINS:
            self._serve(res)
        for ns in DEFAULT_NAMESPACES:
            self.create(self.lookup("", "v1", "namespaces"), None, {"metadata": {"name": ns}})

    # -- registry -----------------------------------------------------------------------------

    def _serve(self, res: Resource) -> None:
        self.resources[(res.group, res.version, res.plural)] = res
        self.objects.setdefault(res.key, {})

    def lookup(self, group: str, version: str, plural: str) -> Resource:
        try:
            return self.resources[(group, version, plural)]
        except KeyError:
            raise ApiError(404, "the server could not find the requested resource") from None

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, in registration order (preferred first)."""
        out: dict[str, list[str]] = {}
        for g, v, _ in self.resources:
            if v not in out.setdefault(g, []):
                out[g].append(v)
        return out

    def resources_in(self, group: str, version: str) -> list[Resource]:
        return [r for (g, v, _), r in self.resources.items() if g == group and v == version]

    def _sync_crd(self, crd: Obj | None, old: Obj | None) -> None:
        """Serve what a CRD declares; stop serving (and drop the objects of) a deleted one."""
        if old is not None:
            for res in resources_from_crd(old):
                self.resources.pop((res.group, res.version, res.plural), None)
            if crd is None:
                spec = old.get("spec") or {}
                key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
                for (ns, name), obj in list(self.objects.get(key, {}).items()):
                    self._remove(key, ns, name, obj)
        if crd is not None:
            for res in resources_from_crd(crd):
                self._serve(res)

    # -- clock, log, watchers -----------------------------------------------------------------

    def _tick(self) -> int:
        self.rv += 1
        return self.rv

    def _compact(self) -> None:
        """Forget events beyond the log size or older than the window, as etcd compaction and the watch
        cache do: a watch resuming from before them gets 410 Expired and must list again."""
        horizon = self.clock() - self.watch_cache_seconds
        while self.log and (len(self.log) > self.log_size or self.log_times[0] < horizon):
            self.compacted_rv = self.log.popleft().rv
            self.log_times.popleft()

    def _emit(self, ev: Event) -> None:
        self.log.append(ev)
        self.log_times.append(self.clock())
        self._compact()
        for w in self.watchers.get(ev.key, ()):
            out = w.translate(ev)
            if out is not None:
                w.queue.put_nowait(out)

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        labels: Matcher,
        fields: Matcher,
        since: str | None,
    ) -> tuple[Watcher, list[tuple[str, Obj]]]:
        """Register a watcher and return the events it must see first (replay or synthetic ADDED).

        Raises 410 Expired when `since` is older than the event log keeps (by length or by age).
        """
        self._compact()
        w = Watcher(res.key, namespace, labels, fields)
        initial: list[tuple[str, Obj]] = []
        if since in (None, "", "0"):
            initial = [("ADDED", o) for o in self._select(res, namespace, labels, fields)]
        else:
            try:
                start = int(since)  # type: ignore[arg-type]
            except ValueError:
                raise ApiError(400, f"invalid resource version: {since!r}") from None
            if start < self.compacted_rv:
                raise ApiError(410, f"too old resource version: {start} ({self.compacted_rv + 1})", reason="Expired")
            for ev in self.log:
                if ev.rv > start and ev.key == res.key:
                    out = w.translate(ev)
                    if out is not None:
                        initial.append(out)
        self.watchers.setdefault(res.key, set()).add(w)
        return w, initial

    def unwatch(self, w: Watcher) -> None:
        self.watchers.get(w.key, set()).discard(w)

    def close_watchers(self) -> None:
        for ws in self.watchers.values():
            for w in ws:
                w.queue.put_nowait(None)

    # -- reads --------------------------------------------------------------------------------

    @staticmethod
    def present(res: Resource, obj: Obj) -> Obj:
        """The stored object as served by this version (all versions share one storage)."""
        if obj.get("apiVersion") == res.api_version and obj.get("kind") == res.kind:
            return obj
        return {**obj, "apiVersion": res.api_version, "kind": res.kind}

    def _bucket(self, res: Resource) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(res.key, {})

    def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(res).get((namespace or "", name))
        if obj is None:
            raise not_found(res.qualified, name, group=res.group)
        return self.present(res, obj)

    def _select(self, res: Resource, namespace: str | None, labels: Matcher, fields: Matcher) -> list[Obj]:
        items = self._bucket(res).items()
        matched = [(k, o) for k, o in items if (namespace is None or k[0] == namespace) and labels(o) and fields(o)]
        matched.sort(key=lambda kv: kv[0])
        return [self.present(res, o) for _, o in matched]

    def list_objects(
        self,
        res: Resource,
        namespace: str | None,
        labels: Matcher,
        fields: Matcher,
        limit: int = 0,
        cont: str | None = None,
    ) -> Obj:
        items = self._select(res, namespace, labels, fields)
        meta: Obj = {"resourceVersion": str(self.rv)}
        if cont:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(cont.encode())))
            except ValueError:
                raise ApiError(400, "continue key is not valid") from None
            items = [o for o in items if (_ns(o), o["metadata"]["name"]) > after]
        if limit and len(items) > limit:
            last = items[limit - 1]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps([_ns(last), last["metadata"]["name"]]).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    # -- writes -------------------------------------------------------------------------------

    def _check_namespace(self, res: Resource, namespace: str | None, creating: str | None = None) -> str:
        """The namespace of a request; when `creating` (the new object's name), it must exist and be active."""
        if not res.namespaced:
            return ""
        if not namespace:
            raise ApiError(404, "the server could not find the requested resource")
        if creating is not None:
            ns_obj = self.objects[NAMESPACE_KEY].get(("", namespace))
            if ns_obj is None:
                raise not_found("namespaces", namespace)
            if ns_obj["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    f'{res.plural} "{creating}" is forbidden: unable to create new content in namespace {namespace} '
                    "because it is being terminated",
                    details={"name": creating, "kind": res.plural},
                )
        return namespace

    def _check_type(self, res: Resource, body: Obj) -> None:
        av, kind = body.get("apiVersion"), body.get("kind")
        if res.is_custom and (not av or not kind):
            raise ApiError(400, f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
        if av and av != res.api_version:
            group = av.rpartition("/")[0]
            if group != res.group or not self.find(res.group, av.rpartition("/")[2], res.plural):
                raise ApiError(
                    400,
                    f"the API version in the data ({av}) does not match the expected API version ({res.api_version})",
                )
        if kind and kind != res.kind:
            raise ApiError(400, f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")

    def create(
        self,
        res: Resource,
        namespace: str | None,
        body: Any,
        dry_run: bool = False,
        field_validation: str = "",
        field_manager: str | None = None,
        user_agent: str | None = None,
        applied_by: mf.Write | None = None,
    ) -> WriteResult:
        """Create; `field_manager`/`user_agent` (HTTP requests) record managedFields, `applied_by` an apply."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        write = applied_by or self._write(res, "CreateOptions", field_manager, user_agent)
        self._check_type(res, body)
        body_name = ((body.get("metadata") or {}) if isinstance(body.get("metadata"), dict) else {}).get("name", "")
        ns = self._check_namespace(res, namespace, creating=str(body_name or ""))
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(
                    400, "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = self._generate_name(res, ns, meta["generateName"])
            else:
                raise self._invalid(
                    res,
                    "",
                    [Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")],
                )
        name = meta["name"]
        meta["uid"] = str(uuid.uuid4())  # system fields first: a Job's generated selector names the uid
        if not res.is_custom:  # defaulting and allocation come before validation, as in kube-apiserver
            refused = defaults.prepare_create(res.key, obj, self._bucket(self.lookup("", "v1", "services")).values())
            if refused:
                raise self._invalid(res, name, refused)
        self._validate_meta(res, obj, ns, None)
        requested_fields = meta.get("managedFields")
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(k, None)
        meta["creationTimestamp"] = now()
        if res.generation:
            meta["generation"] = 1
        if res.status:
            obj.pop("status", None)  # create cannot set status where the /status subresource owns it
            defaults.initial_status(res.key, obj)
        if res.key == NAMESPACE_KEY:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        warnings = self._admit(res, obj, None, field_validation)
        if write is not None:
            self._own(res, None, obj, write, requested_fields, body)
        if (ns, name) in self._bucket(res):
            raise already_exists(res.qualified, name, res.group)
        if res.key == CRD_KEY:
            self._admit_crd(obj)
        if dry_run:
            return WriteResult(self.present(res, obj), warnings, created=True)
        self._store(res.key, ns, name, obj, None, "ADDED")
        if res.key == CRD_KEY:
            self._establish(obj)
        if res.key == NAMESPACE_KEY:  # kube's serviceaccounts-controller: pods without one run as `default`
            self.create(self.lookup("", "v1", "serviceaccounts"), name, {"metadata": {"name": "default"}})
        return WriteResult(self.present(res, self._bucket(res)[(ns, name)]), warnings, created=True)

    def _generate_name(self, res: Resource, ns: str, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(random.choices(_GEN_CHARS, k=5))
            if (ns, name) not in self._bucket(res):
                return name
        raise ApiError(409, f"could not generate a unique name from {prefix!r}", reason="AlreadyExists")

    def _validate_meta(self, res: Resource, obj: Obj, ns: str, old: Obj | None) -> None:
        meta = obj["metadata"]
        causes = name_causes(res, meta["name"]) if old is None else []
        causes += metadata_causes(meta) + event_causes(res, obj, ns)
        if not res.is_custom:
            causes += builtin_causes(res, obj, old)
        if causes:
            raise self._invalid(res, meta["name"], causes)

    def _invalid(self, res: Resource, name: str, causes: list[Cause]) -> ApiError:
        return invalid(res.group_kind, name, res.group, res.kind, causes)

    # -- field ownership (managed_fields.py) --------------------------------------------------

    @staticmethod
    def _write(res: Resource, options: str, field_manager: str | None, user_agent: str | None,
               operation: str = mf.UPDATE, subresource: str | None = None, force: bool = False) -> mf.Write | None:  # fmt: skip
        """Who writes, for managedFields; None for the server's own writes (not tracked)."""
        manager = mf.manager_for(field_manager, user_agent)
        if manager is None:
            return None
        errors = [Cause(*e) for e in mf.field_manager_errors(field_manager or "")]
        if errors:
            raise invalid(f"{options}.meta.k8s.io", "", "meta.k8s.io", options, errors)
        return mf.Write(manager, operation, res.api_version, subresource or "", res.status, force)

    def _own(
        self, res: Resource, old: Obj | None, new: Obj, write: mf.Write, requested: Any, config: Any = None
    ) -> None:
        """Record in `new`'s managedFields what this write set (an Update entry, or an apply's on create)."""
        shape = mf.shape_for(res.kind, res.schema, res.is_custom)
        try:
            if write.operation == mf.APPLY:
                fields = mf.applied_on_create(shape, config, write, now())
            else:
                fields = mf.updated(shape, old, new, write, now(), requested)
        except mf.ConfigError as exc:
            raise _typed_patch_error(res, new, exc) from None
        if fields:
            new["metadata"]["managedFields"] = fields
        else:
            new["metadata"].pop("managedFields", None)

    def _apply(self, res: Resource, live: Obj, config: Obj, write: mf.Write) -> Obj:
        """The live object with `config` server-side applied; 409 naming the fields other managers own."""
        try:
            return mf.applied(mf.shape_for(res.kind, res.schema, res.is_custom), live, config, write, now())
        except mf.ConfigError as exc:
            raise _typed_patch_error(res, live, exc) from None
        except mf.ApplyConflict as exc:
            raise ApiError(409, exc.message, reason="Conflict", details={"causes": exc.causes()}) from None

    def _admit(self, res: Resource, obj: Obj, old: Obj | None, field_validation: str) -> list[str]:
        """Schema semantics of custom resources (prune, default, validate, CEL); in place."""
        warnings: list[str] = []
        if not res.is_custom or res.schema is None:
            return warnings
        name = obj["metadata"].get("name", "")
        meta = obj["metadata"]
        pruned, dropped = sch.prune(obj, res.schema, root=True)
        obj.clear()
        obj.update(pruned)
        obj["metadata"] = meta
        if dropped:
            fv = (field_validation or "Warn").lower()
            if fv == "strict":
                fields = ", ".join(f'unknown field "{d}"' for d in dropped)
                raise ApiError(
                    400,
                    f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: strict decoding error: {fields}',
                )
            if fv == "warn":
                warnings += [f'unknown field "{d}"' for d in dropped]
        sch.apply_defaults(obj, res.schema)
        causes = sch.validate(obj, res.schema, root=True)
        if sch.has_cel(res.schema):
            old_clean = {k: v for k, v in (old or {}).items() if k != "metadata"}
            new_clean = {k: v for k, v in obj.items() if k != "metadata"}
            new_clean["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
            if old is not None:
                old_clean["metadata"] = {
                    k: old["metadata"][k] for k in ("name", "generateName") if k in old["metadata"]
                }
            causes += sch.validate_cel(
                new_clean, old_clean if old is not None else None, res.schema, has_old=old is not None
            )
        if causes:
            raise self._invalid(res, name, causes)
        return warnings

    def _admit_crd(self, crd: Obj) -> None:
        """Reject a CRD kube-apiserver would not accept, before anything is served from it."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        causes: list[Cause] = []
        for req in ("group", "names", "versions", "scope"):
            if not spec.get(req):
                causes.append(Cause("FieldValueRequired", f"spec.{req}", "Required value"))
        if names and spec.get("group") and name != f"{names.get('plural')}.{spec.get('group')}":
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: {sch.fmt(name)}: must be spec.names.plural+"."+spec.group',
                )
            )
        for req in ("plural", "kind"):
            if names and not names.get(req):
                causes.append(Cause("FieldValueRequired", f"spec.names.{req}", "Required value"))
        decode: list[Cause] = []
        for n, ver in enumerate(spec.get("versions") or []):
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            if schema is None:
                causes.append(
                    Cause(
                        "FieldValueRequired",
                        f"spec.versions[{n}].schema.openAPIV3Schema",
                        "Required value: schemas are required",
                    )
                )
                continue
            for cause in sch.check_crd_schema(schema, f"spec.versions[{n}].schema.openAPIV3Schema", self.strict_crds):
                (decode if cause.reason == "BadRequest" else causes).append(cause)
        if decode:
            raise ApiError(
                400,
                f'CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: {decode[0].detail}',
            )
        if causes:
            raise invalid(
                "CustomResourceDefinition.apiextensions.k8s.io",
                name,
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                causes,
            )

    def _establish(self, crd: Obj) -> None:
        names = (crd.get("spec") or {}).get("names") or {}
        status = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
                 "lastTransitionTime": now()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now()},
            ],
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
        }  # fmt: skip
        name = crd["metadata"]["name"]
        current = self.objects[CRD_KEY][("", name)]
        updated = {**current, "status": status}
        updated["metadata"] = {**current["metadata"], "resourceVersion": str(self._tick())}
        self.objects[CRD_KEY][("", name)] = updated
        self._emit(Event(self.rv, "MODIFIED", CRD_KEY, "", updated, current))

    def _store(self, key: Key, ns: str, name: str, obj: Obj, old: Obj | None, etype: str) -> None:
        obj["metadata"]["resourceVersion"] = str(self._tick())
        self.objects[key][(ns, name)] = obj
        if old is not None:
            self._unindex(key, ns, name, old)
        self._index(key, ns, name, obj)
        self._emit(Event(self.rv, etype, key, ns, obj, old))
        if key == CRD_KEY:
            self._sync_crd(obj, old)

    def _index(self, key: Key, ns: str, name: str, obj: Obj) -> None:
        ref = (key, ns, name)
        self.uids[obj["metadata"]["uid"]] = ref
        for owner in obj["metadata"].get("ownerReferences") or []:
            uid = owner.get("uid")
            if uid:
                self.dependents.setdefault(uid, set()).add(ref)
                if not self._owner_alive(uid, ns):
                    self._schedule_gc(ref)

    def _unindex(self, key: Key, ns: str, name: str, obj: Obj) -> None:
        ref = (key, ns, name)
        for owner in obj["metadata"].get("ownerReferences") or []:
            deps = self.dependents.get(owner.get("uid", ""))
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self.dependents[owner["uid"]]

    def _res_for(self, key: Key) -> Resource:
        for r in self.resources.values():
            if r.key == key:
                return r
        raise ApiError(404, "the server could not find the requested resource")

    def update(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        mutate: Callable[[Obj], Obj],
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "",
        require_rv: bool = False,
        write: mf.Write | None = None,
    ) -> WriteResult:
        """The one update path (PUT and every patch type): `mutate` gets a copy of the stored object.

        An Update `write` records its fields in managedFields here; an apply's `mutate` did already.
        """
        ns = self._check_namespace(res, namespace)
        if subresource not in (None, "status") or (subresource == "status" and not res.status):
            raise ApiError(404, "the server could not find the requested resource")
        old = self._bucket(res).get((ns, name))
        if old is None:
            raise not_found(res.qualified, name, group=res.group)
        cand = mutate(copy.deepcopy(self.present(res, old)))
        if not isinstance(cand, dict):
            raise ApiError(400, "the result of the update must be a JSON object")
        self._check_type(res, cand)
        cmeta = cand.get("metadata")
        if not isinstance(cmeta, dict):
            cmeta = cand["metadata"] = {}
        if cmeta.get("name", name) != name:
            raise ApiError(
                400, f"the name of the object ({cmeta.get('name')}) does not match the name on the URL ({name})"
            )
        if res.namespaced and cmeta.get("namespace", ns) != ns:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        sent_rv = cmeta.get("resourceVersion")
        if sent_rv in (None, ""):
            if require_rv and res.is_custom:
                raise self._invalid(
                    res,
                    name,
                    [
                        Cause(
                            "FieldValueInvalid",
                            "metadata.resourceVersion",
                            "Invalid value: 0x0: must be specified for an update",
                        )
                    ],
                )
        elif str(sent_rv) != old["metadata"]["resourceVersion"]:
            raise conflict(
                res.qualified,
                name,
                res.group,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        ometa = old["metadata"]
        if cmeta.get("uid") and cmeta["uid"] != ometa["uid"]:
            raise conflict(res.qualified, name, res.group,
                           f"Precondition failed: UID in precondition: {cmeta['uid']}, UID in object meta: {ometa['uid']}")  # fmt: skip
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in cand:
                new["status"] = cand["status"]
            else:
                new.pop("status", None)
        else:
            new = cand
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
            nmeta = new["metadata"]
            for k in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ):
                if k in ometa:
                    nmeta[k] = ometa[k]
                else:
                    nmeta.pop(k, None)
            if res.status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if ometa.get("deletionTimestamp"):
                added = [f for f in nmeta.get("finalizers") or [] if f not in (ometa.get("finalizers") or [])]
                if added:
                    quoted = ", ".join(json.dumps(f) for f in added)
                    raise self._invalid(res, name, [Cause("FieldValueForbidden", "metadata.finalizers",
                        f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{quoted}}}")])  # fmt: skip
        if subresource is None and not res.is_custom:  # before the "did anything change" check below
            services = self._bucket(self.lookup("", "v1", "services")).values()
            refused = defaults.prepare_update(res.key, new, old, services)
            if refused:
                raise self._invalid(res, name, refused)
        new["metadata"]["resourceVersion"] = ometa["resourceVersion"]
        if subresource is None:
            self._validate_meta(res, new, ns, old)
        warnings = self._admit(res, new, old, field_validation)
        if res.key == CRD_KEY and subresource is None:
            self._admit_crd(new)
        if write is not None and write.operation == mf.UPDATE:
            self._own(res, old, new, write, new["metadata"].get("managedFields"))
        if _same(new, old):
            return WriteResult(self.present(res, old), warnings)
        if res.generation and _spec_changed(new, old, res.status):
            new["metadata"]["generation"] = int(ometa.get("generation", 1)) + 1
        if dry_run:
            return WriteResult(self.present(res, new), warnings)
        if _deletable(new):
            self._remove(res.key, ns, name, old, final=new)
            return WriteResult(self.present(res, new), warnings)
        self._store(res.key, ns, name, new, old, "MODIFIED")
        return WriteResult(self.present(res, new), warnings)

    def replace(self, res: Resource, namespace: str | None, name: str, body: Any, subresource: str | None = None,
                dry_run: bool = False, field_validation: str = "", field_manager: str | None = None,
                user_agent: str | None = None) -> WriteResult:  # fmt: skip
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        write = self._write(res, "UpdateOptions", field_manager, user_agent, subresource=subresource)
        return self.update(res, namespace, name, lambda _old: copy.deepcopy(body), subresource, dry_run,
                           field_validation, require_rv=True, write=write)  # fmt: skip

    def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        content_type: str,
        body: Any,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "",
        field_manager: str | None = None,
        user_agent: str | None = None,
        force: str | None = None,
    ) -> WriteResult:
        """Every patch type; apply (server-side apply) merges by field ownership, the others record it."""
        kind = PATCH_TYPES.get(content_type.split(";")[0].strip())
        write: mf.Write | None
        if kind is None or (kind == "strategic" and res.is_custom):
            accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            if not res.is_custom:
                accepted += ", application/strategic-merge-patch+json"
            raise ApiError(
                415, f"the body of the request was in an unknown format - accepted media types include: {accepted}"
            )
        if kind == "apply":
            write = _apply_write(res, body, subresource, field_manager, force)
            if ((namespace or ""), name) not in self._bucket(res) and subresource is None:
                body = {**body, "metadata": {**(body.get("metadata") or {}), "name": name}}
                return self.create(res, namespace, body, dry_run, field_validation, applied_by=write)
        else:
            if force is not None:
                raise _patch_options_invalid(Cause("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"))  # fmt: skip
            write = self._write(res, "PatchOptions", field_manager, user_agent, subresource=subresource)
        if kind in ("merge", "strategic") and not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")

        def mutate(old: Obj) -> Obj:
            if kind == "apply" and write is not None:
                return self._apply(res, old, body, write)
            try:
                if kind == "json":
                    return json_patch(mf.thawed(old, body), body)  # type: ignore[no-any-return]
                if kind == "strategic":
                    return strategic_merge_patch(old, body)  # type: ignore[no-any-return]
                return merge_patch(old, body)  # type: ignore[no-any-return]
            except PatchError as exc:
                if exc.code == 422:
                    raise ApiError(
                        422, f"the server rejected our request due to an error in our request: {exc}"
                    ) from None
                raise ApiError(exc.code, str(exc)) from None

        return self.update(res, namespace, name, mutate, subresource, dry_run, field_validation, write=write)

    # -- deletes and garbage collection -------------------------------------------------------

    def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        options: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """Delete now, or mark for deletion when finalizers hold it (`deleted=False` → 202) or, for a
        running pod, for a graceful deletion the kubelet completes (200, as kube-apiserver answers)."""
        ns = self._check_namespace(res, namespace)
        old = self._bucket(res).get((ns, name))
        if old is None:
            raise not_found(res.qualified, name, group=res.group)
        options = options or {}
        pre = options.get("preconditions") or {}
        meta = old["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(res.qualified, name, res.group,
                           f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}")  # fmt: skip
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise conflict(res.qualified, name, res.group,
                           f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                           f"ResourceVersion in object meta: {meta['resourceVersion']}")  # fmt: skip
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and self.dependents.get(meta["uid"]) and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = _grace_option(options)
        if policy == "Orphan" and not dry_run:
            self._orphan(meta["uid"])
        if res.key == POD_KEY:
            graceful = self._delete_pod_gracefully(res, ns, name, old, grace, finalizers, dry_run)
            if graceful is not None:
                return graceful
        if finalizers or res.key == NAMESPACE_KEY:  # a namespace always waits for its content to go
            if meta.get("deletionTimestamp"):
                return WriteResult(self.present(res, old), deleted=False)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if new["metadata"].get("generation"):  # kube-apiserver's markAsDeleting bumps it
                new["metadata"]["generation"] += 1
            new["metadata"]["finalizers"] = finalizers
            if not finalizers:
                new["metadata"].pop("finalizers")
            if res.key == NAMESPACE_KEY:
                new["status"] = {"phase": "Terminating"}
            if dry_run:
                return WriteResult(self.present(res, new), deleted=False)
            self._store(res.key, ns, name, new, old, "MODIFIED")
            if "foregroundDeletion" in finalizers or res.key == NAMESPACE_KEY:
                self._schedule_gc((res.key, ns, name))
            return WriteResult(self.present(res, new), deleted=False)
        if dry_run:
            return WriteResult(self.present(res, old))
        final = self._remove(res.key, ns, name, old)
        return WriteResult(self.present(res, final))

    def _delete_pod_gracefully(self, res: Resource, ns: str, name: str, old: Obj, grace: int | None,
                               finalizers: list[str], dry_run: bool) -> WriteResult | None:  # fmt: skip
        """kube-apiserver's BeforeDelete with the pod strategy: mark a scheduled, unfinished pod for
        deletion in `grace` seconds (default its terminationGracePeriodSeconds); a second delete may
        only shorten that. None: delete as any object (no grace left, or not graceful at all)."""
        meta = old["metadata"]
        pending = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp"):
            if not pending:  # its grace is over: finalizers (or nothing) decide, as for any object
                return None
            if grace is None or grace >= pending:
                return WriteResult(self.present(res, old))
            deadline = when(meta["deletionTimestamp"]) - timedelta(seconds=pending - grace)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            grace = _pod_grace(old, grace)
            if grace == 0:
                return None
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now(grace)
            if new["metadata"].get("generation"):
                new["metadata"]["generation"] += 1
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        _set_finalizers(new, finalizers)
        if dry_run:
            return WriteResult(self.present(res, new), deleted=not finalizers or grace > 0)
        if grace == 0 and not finalizers:
            return WriteResult(self.present(res, self._remove(res.key, ns, name, old, final=new)))
        self._store(res.key, ns, name, new, old, "MODIFIED")
        if "foregroundDeletion" in finalizers:
            self._schedule_gc((res.key, ns, name))
        return WriteResult(self.present(res, new), deleted=grace > 0)

    def delete_collection(
        self,
        res: Resource,
        namespace: str | None,
        labels: Matcher,
        fields: Matcher,
        options: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        items = self._select(res, namespace, labels, fields)
        out = []
        for obj in items:
            try:
                out.append(self.delete(res, _ns(obj) or None, obj["metadata"]["name"], options, dry_run).obj)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": out,
        }

    def _remove(self, key: Key, ns: str, name: str, old: Obj, final: Obj | None = None) -> Obj:
        """Remove for real: DELETED event, then collect dependents (background) in a later tick."""
        obj = copy.deepcopy(final if final is not None else old)
        obj["metadata"]["resourceVersion"] = str(self._tick())
        del self.objects[key][(ns, name)]
        self._unindex(key, ns, name, old)
        uid = old["metadata"]["uid"]
        self.uids.pop(uid, None)
        self._emit(Event(self.rv, "DELETED", key, ns, obj, old))
        for dep in list(self.dependents.get(uid, ())):
            self._schedule_gc(dep)
        for owner in old["metadata"].get("ownerReferences") or []:
            ref = self.uids.get(owner.get("uid", ""))
            if ref is not None:
                self._schedule_gc(ref)  # a foreground-deleting owner may now be free to go
        if ns:
            ns_obj = self.objects[NAMESPACE_KEY].get(("", ns))
            if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
                self._schedule_gc((NAMESPACE_KEY, "", ns))
        if key == CRD_KEY:
            self._sync_crd(None, old)
        return obj

    def _orphan(self, uid: str) -> None:
        for key, ns, name in list(self.dependents.get(uid, ())):
            dep = self.objects.get(key, {}).get((ns, name))
            if dep is None:
                continue
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            self._internal_update(key, ns, name, functools.partial(_set_owner_refs, refs=refs))

    def _internal_update(self, key: Key, ns: str, name: str, fn: Callable[[Obj], None]) -> None:
        old = self.objects.get(key, {}).get((ns, name))
        if old is None:
            return
        new = copy.deepcopy(old)
        fn(new)
        if _same(new, old):
            return
        if old["metadata"].get("managedFields"):  # the garbage collector's removals leave its owners too
            res = self._res_for(key)
            self._own(res, old, new, mf.Write(_GC_MANAGER, mf.UPDATE, res.api_version, "", res.status), None)
        if _deletable(new):
            self._remove(key, ns, name, old, final=new)
        else:
            self._store(key, ns, name, new, old, "MODIFIED")

    def _owner_alive(self, uid: str, dependent_ns: str) -> bool:
        ref = self.uids.get(uid)
        if ref is None:
            return False
        return ref[1] in ("", dependent_ns)

    def _owner_kind_namespaced(self, owner: Mapping[str, Any]) -> bool | None:
        """Whether the owner reference's kind is namespaced; None for a kind the server does not serve."""
        api_version = str(owner.get("apiVersion") or "")
        group = api_version.rpartition("/")[0]
        for r in self.resources.values():
            if r.group == group and r.kind == owner.get("kind"):
                return r.namespaced
        return None

    def _invalid_owner_ref(self, owner: Mapping[str, Any], dependent_ns: str) -> str | None:
        """kube-controller-manager's rule (1.20+, docs "Owners and Dependents"): a namespaced owner
        must be in its dependent's namespace, else the reference counts as absent; a cluster-scoped
        dependent with a namespaced owner kind is unresolvable and never collected. The message of
        the OwnerRefInvalidNamespace Warning both get; None when the reference is valid."""
        if not dependent_ns and self._owner_kind_namespaced(owner):
            return f"ownerRef {owner} does not resolve: a cluster-scoped object cannot have a namespaced owner"
        ref = self.uids.get(str(owner.get("uid") or ""))
        if dependent_ns and ref is not None and ref[1] not in ("", dependent_ns):
            return f"ownerRef {owner} does not exist in namespace {dependent_ns!r}"
        return None

    def _warn_owner_ref(self, key: Key, ns: str, obj: Obj, message: str) -> None:
        """The Warning Event kube's garbage collector records on the dependent (once per dependent)."""
        meta = obj["metadata"]
        if meta["uid"] in self._owner_ref_warned:
            return
        self._owner_ref_warned.add(meta["uid"])
        res = self._res_for(key)
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": ns or "default"},
            "involvedObject": {"apiVersion": res.api_version, "kind": res.kind, "name": meta["name"],
                               "namespace": ns or None, "uid": meta["uid"]},
            "reason": "OwnerRefInvalidNamespace", "message": message, "type": "Warning",
            "source": {"component": "garbage-collector-controller"}, "reportingComponent": "garbage-collector-controller",
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
        }  # fmt: skip
        with contextlib.suppress(ApiError):
            self.create(self.lookup("", "v1", "events"), ns or "default", event)

    def _schedule_gc(self, ref: Ref) -> None:
        self._gc_pending.add(ref)
        if self._gc_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (construction time): collected on the next scheduled pass
        self._gc_scheduled = True
        loop.call_soon(self.collect_garbage)

    def collect_garbage(self) -> None:
        """One pass of the garbage collector and namespace controller, like kube-controller-manager's."""
        self._gc_scheduled = False
        while self._gc_pending:
            ref = self._gc_pending.pop()
            key, ns, name = ref
            obj = self.objects.get(key, {}).get((ns, name))
            if obj is None:
                continue
            meta = obj["metadata"]
            if key == NAMESPACE_KEY and meta.get("deletionTimestamp"):
                self._empty_namespace(name)
                continue
            if "foregroundDeletion" in (meta.get("finalizers") or []) and meta.get("deletionTimestamp"):
                if not any(self.objects.get(k, {}).get((n2, nm)) for k, n2, nm in self.dependents.get(meta["uid"], ())):
                    rest = [f for f in meta["finalizers"] if f != "foregroundDeletion"]
                    self._internal_update(key, ns, name, functools.partial(_set_finalizers, finalizers=rest))
                    continue
                for dep in list(self.dependents.get(meta["uid"], ())):
                    self._delete_dependent(dep)
                continue
            refs = meta.get("ownerReferences") or []
            if not refs:
                continue
            invalid = [m for m in (self._invalid_owner_ref(r, ns) for r in refs) if m]
            if invalid:
                self._warn_owner_ref(key, ns, obj, invalid[0])
            if not ns and any(self._owner_kind_namespaced(r) for r in refs):
                continue  # unresolvable: kube never collects it
            alive = [r for r in refs if self._owner_alive(r.get("uid", ""), ns)]
            if alive and len(alive) < len(refs):
                self._internal_update(key, ns, name, functools.partial(_set_owner_refs, refs=alive))
            elif not alive:
                self._delete_dependent(ref)

    def _delete_dependent(self, ref: Ref) -> None:
        key, ns, name = ref
        with contextlib.suppress(ApiError):
            self.delete(self._res_for(key), ns or None, name, {"propagationPolicy": "Background"})

    def _empty_namespace(self, name: str) -> None:
        remaining = False
        for key, bucket in self.objects.items():
            if key == NAMESPACE_KEY:
                continue
            for (ns, obj_name), obj in list(bucket.items()):
                if ns != name:
                    continue
                remaining = True
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete_dependent((key, ns, obj_name))
        if remaining:
            remaining = any(ns == name for key, b in self.objects.items() if key != NAMESPACE_KEY for (ns, _) in b)
        if not remaining:
            old = self.objects[NAMESPACE_KEY].get(("", name))
            if old is not None:
                self._remove(NAMESPACE_KEY, "", name, old)

    # -- helpers for tests and the demo -------------------------------------------------------

    def objects_of(self, plural: str, group: str = "") -> Iterable[Obj]:
        """Stored objects of a group/plural, for direct inspection in tests."""
        return list(self.objects.get((group, plural), {}).values())


def _ns(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("namespace") or "")


def _patch_options_invalid(*causes: Cause) -> ApiError:
    return invalid("PatchOptions.meta.k8s.io", "", "meta.k8s.io", "PatchOptions", list(causes))


def _apply_write(res: Resource, body: Any, subresource: str | None, field_manager: str | None,
                 force: str | None) -> mf.Write:  # fmt: skip
    """Check an apply request as kube-apiserver does before looking at the object."""
    causes = [] if field_manager else [Cause("FieldValueRequired", "fieldManager", "Required value: is required for apply patch")]  # fmt: skip
    causes += [Cause(*e) for e in mf.field_manager_errors(field_manager or "")]
    if causes:
        raise _patch_options_invalid(*causes)
    if not isinstance(body, dict):
        raise ApiError(400, "the body of the request must be a JSON object")
    if isinstance(body.get("metadata"), dict) and body["metadata"].get("managedFields") is not None:
        raise ApiError(400, "metadata.managedFields must be nil")
    if body.get("apiVersion") != res.api_version:
        raise ApiError(400, "Incorrect version specified in apply patch. "
                            f"Specified patch version: {body.get('apiVersion') or ''}, expected: {res.api_version}")  # fmt: skip
    flag = (force or "false").lower()
    if flag not in ("true", "1", "t", "false", "0", "f"):
        raise ApiError(400, f'strconv.ParseBool: parsing "{force}": invalid syntax')
    forced = flag in ("true", "1", "t")
    return mf.Write(field_manager or "", mf.APPLY, res.api_version, subresource or "", res.status, forced)


def _typed_patch_error(res: Resource, obj: Obj, exc: mf.ConfigError) -> ApiError:
    """kube-apiserver's answer to an apply it cannot type (a 500, as there: not a metav1.Status)."""
    where = f"{_ns(obj)}/{obj.get('metadata', {}).get('name', '')}; {res.group}/{res.version}, Kind={res.kind}"
    errors = exc.errors[0] if len(exc.errors) == 1 else "errors:\n  " + "\n  ".join(exc.errors)
    return ApiError(500, f"failed to create typed patch object ({where}): {errors}")


def _strip(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_META}
    return {**obj, "metadata": meta}


def _same(a: Obj, b: Obj) -> bool:
    return _strip(a) == _strip(b)


def _spec_changed(new: Obj, old: Obj, status_subresource: bool) -> bool:
    skip = {"metadata", "status"} if status_subresource else {"metadata"}
    return {k: v for k, v in new.items() if k not in skip} != {k: v for k, v in old.items() if k not in skip}


def when(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _deletable(obj: Obj) -> bool:
    """Marked for deletion, no finalizer left and no grace period running: gone on this write."""
    meta = obj["metadata"]
    grace_running = meta.get("deletionGracePeriodSeconds")
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and not grace_running


def _grace_option(options: Mapping[str, Any]) -> int | None:
    """DeleteOptions.gracePeriodSeconds (body or query); a negative period means 1, as in kube."""
    value = options.get("gracePeriodSeconds")
    if value is None or value == "":
        return None
    try:
        grace = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"invalid value for gracePeriodSeconds: {value!r}: must be an integer") from None
    return 1 if grace < 0 else grace


def _pod_grace(pod: Obj, requested: int | None) -> int:
    """The pod strategy's CheckGracefulDelete: the requested period, else terminationGracePeriodSeconds
    (30 by default); 0 for a pod no kubelet runs (unscheduled) or that has finished.

    The sandbox has no scheduler: a pod is scheduled once it names a node or the kubelet has set
    PodScheduled=True (it takes every pod of the image it can run).
    """
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if requested is None:
        value = spec.get("terminationGracePeriodSeconds")
        requested = int(value) if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_POD_GRACE
    scheduled = bool(spec.get("nodeName")) or any(
        c.get("type") == "PodScheduled" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not scheduled or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    return 1 if requested < 0 else requested


def _set_owner_refs(obj: Obj, refs: list[Any]) -> None:
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _set_finalizers(obj: Obj, finalizers: list[str]) -> None:
    if finalizers:
        obj["metadata"]["finalizers"] = finalizers
    else:
        obj["metadata"].pop("finalizers", None)
