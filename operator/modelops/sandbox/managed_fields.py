"""Server-side apply's field ownership (`metadata.managedFields`), as kube-apiserver keeps it.

A port of what kube-apiserver's structured-merge-diff does, because GitOps tools and controllers
meet it on every real cluster: every write records which manager set which fields; an apply merges
the applied configuration into the live object, removes what its manager stopped sending (unless
someone else owns it), and refuses with a 409 to change a field another manager owns unless
forced. The set algebra is in `field_sets`, the type facts in `field_types`. Pure: objects in,
objects out; `now` is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NoReturn

import yaml

from modelops.sandbox.field_sets import (
    UNTRACKED_META,
    ConfigError,
    FieldSet,
    ManagedFieldsError,
    Path,
    Scope,
    compare,
    from_fields_v1,
    iterate,
    merge,
    path_string,
    prune,
    to_fields_v1,
    to_set,
)
from modelops.sandbox.field_types import Shape, shape_for

__all__ = [
    "APPLY",
    "UPDATE",
    "ApplyConflict",
    "ConfigError",
    "Write",
    "applied",
    "applied_on_create",
    "field_manager_errors",
    "manager_for",
    "shape_for",
    "thawed",
    "updated",
]

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (manager, operation, apiVersion ("" for Apply), subresource)

APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
_FIELD_MANAGER_MAX = 128
# Never owned: kube strips these from every set.
STRIPPED: FieldSet = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", "f:" + k) for k in (*UNTRACKED_META, "clusterName")}
)


# -- managers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One manager's fields; `raw` is its encoded entry while unchanged (re-encoding is skipped)."""

    fields: FieldSet
    api_version: str
    time: str | None
    raw: Frozen | None = None


Managers = dict[Key, Entry]


def _key(entry: Mapping[str, Any]) -> Key:
    op = str(entry.get("operation") or "")
    return (
        str(entry.get("manager") or ""),
        op,
        "" if op == APPLY else str(entry.get("apiVersion") or ""),
        str(entry.get("subresource") or ""),
    )


class Frozen(dict[str, Any]):
    """A managedFields entry (or one of its fieldsV1 nodes) as stored: immutable, so the deep copies
    the store makes on every write share it instead of copying it, and its decoding is kept on it."""

    decoded: tuple[Key, Entry] | None = None

    def __deepcopy__(self, memo: Any) -> Frozen:
        return self

    def __copy__(self) -> Frozen:
        return self

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("managedFields entries are immutable: replace metadata.managedFields instead")

    __setitem__ = __delitem__ = setdefault = pop = popitem = clear = update = __ior__ = _refuse  # type: ignore[assignment]


for _representer in (yaml.SafeDumper, yaml.Dumper):  # in-process users may yaml.dump stored objects
    _representer.add_representer(Frozen, yaml.SafeDumper.represent_dict)


def decode(entries: Any) -> Managers:
    """managedFields as kube's DecodeManagedFields reads them; invalid ones raise ManagedFieldsError."""
    out: Managers = {}
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for n, entry in enumerate(entries):
        if isinstance(entry, Frozen) and entry.decoded is not None:
            out[entry.decoded[0]] = entry.decoded[1]
            continue
        if not isinstance(entry, dict):
            raise ManagedFieldsError(f"managed fields entry {n} must be an object")
        if entry.get("operation") not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        if not entry.get("apiVersion"):
            raise ManagedFieldsError("apiVersion must not be empty")
        if entry.get("fieldsType") != "FieldsV1":
            raise ManagedFieldsError(f"invalid fieldsType in managed fields entry {n}")
        fields = frozenset(from_fields_v1(entry.get("fieldsV1") or {}))
        frozen = entry if isinstance(entry, Frozen) else None
        out[_key(entry)] = Entry(fields, str(entry["apiVersion"]), entry.get("time"), frozen)
    return out


def _identity(key: Key) -> str:
    """The manager identifier kube sorts conflicts by (JSON of manager, operation, apiVersion, subresource)."""
    manager, op, version, sub = key
    parts = {"manager": manager, "operation": op, "apiVersion": version, "subresource": sub}
    return json.dumps({k: v for k, v in parts.items() if v}, separators=(",", ":"))


def encode(managers: Managers) -> list[Obj] | None:
    """managedFields entries in kube's order (Apply before Update, then by time, manager, version)."""
    entries: list[Obj] = []
    for key, entry in managers.items():
        if entry.raw is not None:
            entries.append(entry.raw)
            continue
        manager, op, _, sub = key
        raw: Obj = {"manager": manager} if manager else {}
        raw.update(operation=op, apiVersion=entry.api_version)
        if entry.time:
            raw["time"] = entry.time
        raw.update(fieldsType="FieldsV1", fieldsV1=to_fields_v1(entry.fields, Frozen))
        if sub:
            raw["subresource"] = sub
        frozen = Frozen(raw)
        frozen.decoded = (key, Entry(entry.fields, entry.api_version, entry.time, frozen))
        entries.append(frozen)
    entries.sort(
        key=lambda e: (
            e["operation"],
            e.get("time") or "",
            e.get("manager", ""),
            e["apiVersion"],
            e.get("subresource", ""),
        )
    )
    return entries or None


def _cap(managers: Managers) -> Managers:
    """At most ten Update entries: the oldest merge into `ancient-changes`, per apiVersion, as kube does."""
    updaters = [k for k in managers if k[1] == UPDATE]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return managers
    updaters.sort(key=lambda k: (managers[k].time or "", _identity(k)))
    first: dict[str, Key] = {}
    length = len(updaters)
    for key in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        entry = managers[key]
        bucket: Key = (ANCIENT, UPDATE, entry.api_version, "")
        if entry.api_version not in first:
            first[entry.api_version] = key
            continue
        if bucket not in managers:
            managers[bucket] = replace(managers.pop(first[entry.api_version]), raw=None)
        held = managers[bucket]
        newest = max(held.time or "", entry.time or "") or None
        managers[bucket] = Entry(held.fields | entry.fields, entry.api_version, newest)
        del managers[key]
        length -= 1
    return managers


# -- writes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """Who writes how: the field manager, Apply or Update, the request's apiVersion and subresource."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    status_subresource: bool = False  # the resource has a /status: main writes leave status alone
    force: bool = False

    @property
    def key(self) -> Key:
        return (self.manager, self.operation, "" if self.operation == APPLY else self.api_version, self.subresource)

    @property
    def scope(self) -> Scope:
        if self.subresource == "status":
            return "status"
        return "main" if self.status_subresource else "all"


def _in_scope(paths: Iterable[Path], scope: Scope) -> FieldSet:
    if scope == "status":
        return frozenset(p for p in paths if p[:1] == ("f:status",))
    if scope == "main":
        return frozenset(p for p in paths if p[:1] != ("f:status",))
    return frozenset(paths)


def _base(live: Any, requested: Any, write: Write) -> Managers:
    """The managers a non-apply write starts from: the request's own managedFields if it sent valid
    ones (`[]` or `[{}]` reset them), else the live object's (clients that drop them lose nothing)."""
    if write.subresource or requested is None or requested == live:
        return _decode_or_empty(live)
    if requested == [] or requested == [{}]:
        return {}
    try:
        managers = decode(requested)
    except ManagedFieldsError:
        return _decode_or_empty(live)
    return managers or _decode_or_empty(live)


def _decode_or_empty(entries: Any) -> Managers:
    try:
        return decode(entries)
    except ManagedFieldsError:
        return {}


def _unchanged_kept(before: Managers, managers: Managers) -> Managers:
    """Entries that end as they began keep their encoded form (re-encoding costs more than the rest)."""
    for key, entry in managers.items():
        old = before.get(key)
        if (
            old is not None
            and entry is not old
            and (old.fields, old.api_version, old.time)
            == (
                entry.fields,
                entry.api_version,
                entry.time,
            )
        ):
            managers[key] = old
    return managers


def _take(managers: Managers, skip: Key | None, changed: set[Path], removed: set[Path]) -> None:
    """Other managers lose the fields this write changed or removed; empty entries go."""
    lost = changed | removed
    if not lost:
        return
    for key, entry in list(managers.items()):
        if key == skip:
            continue
        kept = entry.fields - lost
        if not kept:
            del managers[key]
        elif len(kept) != len(entry.fields):
            managers[key] = Entry(kept, entry.api_version, entry.time)  # (not dataclasses.replace: hot path)


def updated(shape: Shape, old: Obj | None, new: Obj, write: Write, now: str, requested: Any = None) -> list[Obj] | None:
    """managedFields after a create, update or non-apply patch by `write.manager` (an Update entry).

    The manager takes every field it added or changed (from everyone else) and keeps what it owned;
    its time moves only when it changed something. `old` is None on create.
    """
    live = (old or {}).get("metadata", {}).get("managedFields")
    managers = _base(live, requested, write)
    before = dict(managers)
    cmp = compare(old if old is not None else shape.zero(), new, shape, write.scope)
    changed = cmp.changed
    _take(managers, None, changed, cmp.removed)
    current = _in_scope(changed - cmp.removed, write.scope) - STRIPPED
    if current:
        prev = managers.get(write.key)
        fields = current | prev.fields if prev is not None else current
        managers[write.key] = Entry(frozenset(fields), write.api_version, now)
    return encode(_cap(_unchanged_kept(before, managers)))


@dataclass(frozen=True)
class Conflict:
    manager: Key
    path: Path


class ApplyConflict(Exception):
    """An apply that would change fields other managers own: kube's 409 message and causes."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(self.message)

    @property
    def message(self) -> str:
        c = self.conflicts
        if len(c) == 1:
            return (
                f"Apply failed with 1 conflict: conflict with {print_manager(c[0].manager)}: {path_string(c[0].path)}"
            )
        lines: list[str] = []
        for key in sorted({x.manager for x in c}, key=_identity):
            lines.append(f"conflicts with {print_manager(key)}:")
            lines += [f"- {path_string(x.path)}" for x in c if x.manager == key]
        return f"Apply failed with {len(c)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [
            {"reason": "FieldManagerConflict", "message": f"conflict with {print_manager(x.manager)}",
             "field": path_string(x.path)}
            for x in self.conflicts
        ]  # fmt: skip


def print_manager(key: Key) -> str:
    """A manager as kube names it in conflicts: `"kubectl"`, `"x" with subresource "status" using v1`."""
    manager, op, version, sub = key
    out = json.dumps(manager, ensure_ascii=False)
    if sub:
        out += f" with subresource {json.dumps(sub)}"
    return f"{out} using {version}" if op == UPDATE else out


def applied(shape: Shape, live: Obj | None, config: Obj, write: Write, now: str) -> Obj:
    """The object after `config` is applied by `write.manager`, its managedFields included.

    Raises ConfigError for a configuration with duplicate or keyless list items and ApplyConflict
    when it changes fields that other managers own (unless `write.force`, which takes them over).
    """
    scope = write.scope
    zero = shape.zero()
    managers = _decode_or_empty((live or {}).get("metadata", {}).get("managedFields"))
    if live is not None and not managers:  # fields no manager recorded belong to "before-first-apply"
        existing = _in_scope(compare(zero, live, shape, scope).changed, scope) - STRIPPED
        if existing:
            managers[(BEFORE_FIRST_APPLY, UPDATE, write.api_version, write.subresource)] = Entry(
                existing, write.api_version, now
            )
    applied_set = _in_scope(to_set(config, shape, strict=True), scope)
    key = write.key
    last = managers.get(key)
    before = dict(managers)
    managers[key] = Entry(applied_set, write.api_version, last.time if last else None)
    merged = merge(live if live is not None else {}, config, shape)
    if last is not None:
        merged = prune(merged, shape, [e.fields for e in managers.values()], last.fields)
    cmp = compare(live if live is not None else zero, merged, shape, scope)
    changed = cmp.changed
    conflicts = [
        Conflict(k, path)
        for k in sorted(managers, key=_identity)
        if k != key
        for path in iterate(managers[k].fields & changed)
    ]
    if conflicts and not write.force:
        raise ApplyConflict(conflicts)
    _take(managers, key, changed, cmp.removed)
    mine = applied_set - STRIPPED
    if not mine:
        del managers[key]
    else:
        # the time moves only when the object changed (kube: a no-op apply returns the live object)
        time = now if (changed or cmp.removed) else (last.time if last else None)
        managers[key] = Entry(mine, write.api_version, time)
    managers = _unchanged_kept(before, managers)
    meta = merged.setdefault("metadata", {})
    encoded = encode(_cap(managers))
    if encoded is None:
        meta.pop("managedFields", None)
    else:
        meta["managedFields"] = encoded
    return merged  # type: ignore[no-any-return]


# -- field managers ---------------------------------------------------------------------------


def manager_for(field_manager: str | None, user_agent: str | None) -> str | None:
    """The manager of a write: `fieldManager`, else the User-Agent up to its first `/` (kubectl,
    OpenAPI-Generator for the Python client, kopf, python-requests...); None when neither is known."""
    if field_manager:
        return field_manager
    if user_agent is None:
        return None
    return _agent_prefix(user_agent)


@lru_cache(maxsize=64)
def _agent_prefix(user_agent: str) -> str:
    out = ""
    for ch in user_agent.split("/", 1)[0]:
        if not ch.isprintable():
            continue
        if len((out + ch).encode()) > _FIELD_MANAGER_MAX:
            break
        out += ch
    return out


def field_manager_errors(name: str) -> list[tuple[str, str, str]]:
    """(reason, field, detail) for a `fieldManager` kube-apiserver refuses: too long or unprintable."""
    errors = []
    if len(name.encode()) > _FIELD_MANAGER_MAX:
        errors.append(
            ("FieldValueTooLong", "fieldManager", f"Too long: may not be more than {_FIELD_MANAGER_MAX} bytes")
        )
    for i, ch in enumerate(name):
        if not ch.isprintable():
            errors.append(
                ("FieldValueInvalid", "fieldManager",
                 f"Invalid value: {json.dumps(name)}: invalid character U+{ord(ch):04X} (at position {i})")
            )  # fmt: skip
    return errors


def applied_on_create(shape: Shape, config: Obj, write: Write, now: str) -> list[Obj] | None:
    """managedFields of an object an apply creates: the applier owns exactly its configuration."""
    fields = _in_scope(to_set(config, shape, strict=True), write.scope) - STRIPPED
    return encode({write.key: Entry(fields, write.api_version, now)}) if fields else None


def thawed(obj: Obj, ops: Any) -> Obj:
    """`obj` with plain (mutable) managedFields entries when a JSON patch edits inside them."""
    paths = (
        [str(op.get(k, "")) for op in ops if isinstance(op, dict) for k in ("path", "from")]
        if isinstance(ops, list)
        else []
    )
    entries = obj.get("metadata", {}).get("managedFields")
    if not isinstance(entries, list) or not any(p.startswith("/metadata/managedFields/") for p in paths):
        return obj
    obj["metadata"]["managedFields"] = json.loads(json.dumps(entries))
    return obj
