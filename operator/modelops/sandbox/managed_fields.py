"""Server-side apply's field ownership (`metadata.managedFields`), as kube-apiserver keeps it.

A port of what kube-apiserver's structured-merge-diff does, because GitOps tools and controllers
meet it on every real cluster: every write records which manager set which fields; an apply merges
the applied configuration into the live object, removes what its manager stopped sending (unless
someone else owns it), and refuses with a 409 to change a field another manager owns unless
forced. Field sets are sets of paths, a path a tuple of kube's fieldsV1 elements (`f:spec`,
`k:{"name":"c"}`, `v:"x"`, `i:0`). Pure: objects in, objects out; `now` is passed in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import Any, Literal, NoReturn

import yaml

Obj = dict[str, Any]
Path = tuple[str, ...]
FieldSet = frozenset[Path]
Key = tuple[str, str, str, str]  # (manager, operation, apiVersion ("" for Apply), subresource)
Scope = Literal["all", "main", "status"]

APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"
_FIELD_MANAGER_MAX = 128


class _Missing:
    """An absent field, as opposed to one holding null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_json = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# -- shapes: the structural-schema facts apply needs ------------------------------------------


@dataclass(frozen=True)
class ListType:
    """How a list merges: as one value (atomic), a set of scalars, or a map of items by key fields."""

    kind: Literal["atomic", "set", "map"] = "atomic"
    keys: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()


ATOMIC = ListType()
SET = ListType("set")


class Shape:
    """One node of a type. The base is kube's "deduced" type: maps merge by key, lists are atomic."""

    kind: str = "any"  # object | array | scalar | any
    atomic: bool = False  # an atomic map: replaced whole, owned as one field
    drop_nulls: bool = False  # typed (built-in) objects cannot hold null: an applied null removes

    def child(self, name: str) -> Shape:
        return DEDUCED

    def declared(self, name: str) -> bool:
        """A struct field (its path is owned only through its leaves) rather than a map entry."""
        return False

    def item(self) -> Shape:
        return DEDUCED

    def list_type(self) -> ListType:
        return ATOMIC

    def zero(self) -> Obj:
        """The empty object a create is compared against (Go structs are never absent)."""
        return {}

    def maps(self) -> bool:
        return self.kind in ("object", "any")

    def lists(self) -> bool:
        return self.kind in ("array", "any")


DEDUCED = Shape()


class SchemaShape(Shape):
    """A custom resource's openAPIV3Schema node; `x-kubernetes-list-type` and `-map-type` decide merging."""

    def __init__(self, schema: Mapping[str, Any], root: bool = False) -> None:
        self.schema = schema
        self.root = root or bool(schema.get("x-kubernetes-embedded-resource"))
        typ = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            self.kind = "scalar"
        elif typ in ("object", "array"):
            self.kind = typ
        elif typ:
            self.kind = "scalar"
        self.atomic = schema.get("x-kubernetes-map-type") == "atomic"
        self._children: dict[str, Shape] = {}
        self._item: Shape | None = None

    def child(self, name: str) -> Shape:
        shape = self._children.get(name)
        if shape is None:
            props = self.schema.get("properties") or {}
            extra = self.schema.get("additionalProperties")
            if self.root and name == "metadata":
                shape = OBJECT_META
            elif isinstance(props.get(name), Mapping):
                shape = SchemaShape(props[name])
            elif isinstance(extra, Mapping):
                shape = SchemaShape(extra)
            else:
                shape = DEDUCED
            self._children[name] = shape
        return shape

    def declared(self, name: str) -> bool:
        return name in (self.schema.get("properties") or {}) or (
            self.root and name in ("apiVersion", "kind", "metadata")
        )

    def item(self) -> Shape:
        if self._item is None:
            items = self.schema.get("items")
            self._item = SchemaShape(items) if isinstance(items, Mapping) else DEDUCED
        return self._item

    def list_type(self) -> ListType:
        kind = self.schema.get("x-kubernetes-list-type")
        if kind == "set":
            return SET
        if kind == "map":
            keys = tuple(self.schema.get("x-kubernetes-list-map-keys") or ())
            props = (self.schema.get("items") or {}).get("properties") or {}
            defaults = tuple((k, props[k]["default"]) for k in keys if "default" in (props.get(k) or {}))
            return ListType("map", keys, defaults)
        return ATOMIC


# Built-in kinds are not schema-validated here; these are the facts of their Go types that
# change what apply does: which lists merge by which key, which structs are atomic, which
# fields are maps of arbitrary keys.
_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "hostAliases": ("ip",),
    "podIPs": ("ip",),
    "hostIPs": ("ip",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "resourceClaims": ("name",),
    "claims": ("name",),
    "addresses": ("type",),
}
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_MAP_FIELDS = frozenset(
    {"labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "matchLabels", "limits",
     "requests", "capacity", "allocatable", "overhead", "parameters"}
)  # fmt: skip
_ATOMIC_STRUCTS = frozenset(
    {"selector", "labelSelector", "namespaceSelector", "podSelector", "secretKeyRef", "configMapKeyRef",
     "fieldRef", "resourceFieldRef"}
)  # fmt: skip
_ATOMIC_CONDITIONS = frozenset({"Job", "CronJob"})  # batch/v1 declares its conditions listType=atomic
_POD_TEMPLATE: Obj = {"template": {"metadata": {}, "spec": {}}}
_ZERO: dict[str, Obj] = {
    "Deployment": {"spec": {**_POD_TEMPLATE, "strategy": {}}, "status": {}},
    "ReplicaSet": {"spec": _POD_TEMPLATE, "status": {}},
    "StatefulSet": {"spec": {**_POD_TEMPLATE, "updateStrategy": {}}, "status": {}},
    "DaemonSet": {"spec": {**_POD_TEMPLATE, "updateStrategy": {}}, "status": {}},
    "Job": {"spec": _POD_TEMPLATE, "status": {}},
    "CronJob": {"spec": {"jobTemplate": {"metadata": {}, "spec": _POD_TEMPLATE}}, "status": {}},
    "Pod": {"spec": {}, "status": {}},
    "Service": {"spec": {}, "status": {"loadBalancer": {}}},
    "Namespace": {"spec": {}, "status": {}},
    "Node": {"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {}}, "nodeInfo": {}}},
    "PersistentVolumeClaim": {"spec": {"resources": {}}, "status": {}},
    "Ingress": {"spec": {}, "status": {"loadBalancer": {}}},
    "NetworkPolicy": {"spec": {"podSelector": {}}},
    "PodDisruptionBudget": {"spec": {}, "status": {}},
    "HorizontalPodAutoscaler": {"spec": {"scaleTargetRef": {}}, "status": {}},
    "Lease": {"spec": {}},
    "CustomResourceDefinition": {"spec": {"names": {}}, "status": {"acceptedNames": {}}},
}


class BuiltinShape(Shape):
    """A node of a built-in kind, known by its field names from the root (list items add "[]")."""

    drop_nulls = True

    def __init__(self, kind: str, names: Path = ()) -> None:
        self.type_kind = kind
        self.names = names
        last = names[-1] if names else ""
        self.atomic = last in _ATOMIC_STRUCTS and not (kind == "Service" and names == ("spec", "selector"))
        self._children: dict[str, Shape] = {}
        self._item: Shape | None = None

    def child(self, name: str) -> Shape:
        shape = self._children.get(name)
        if shape is None:
            shape = self._children[name] = BuiltinShape(self.type_kind, (*self.names, name))
        return shape

    def declared(self, name: str) -> bool:
        return not (self.names and self.names[-1] in _MAP_FIELDS)

    def item(self) -> Shape:
        if self._item is None:
            if self.names and self.names[-1] == "ownerReferences":
                self._item = _ATOMIC_ITEM
            else:
                self._item = BuiltinShape(self.type_kind, (*self.names, "[]"))
        return self._item

    def list_type(self) -> ListType:
        names = self.names
        last = names[-1] if names else ""
        if names == ("metadata", "finalizers"):
            return SET
        if last == "ports":
            if len(names) >= 3 and names[-3] in _CONTAINER_LISTS:
                return ListType("map", ("containerPort", "protocol"), (("protocol", "TCP"),))
            if self.type_kind == "Service" and names == ("spec", "ports"):
                return ListType("map", ("port", "protocol"), (("protocol", "TCP"),))
            return ATOMIC
        if last == "conditions" and self.type_kind in _ATOMIC_CONDITIONS:
            return ATOMIC
        keys = _LIST_KEYS.get(last)
        return ListType("map", keys) if keys else ATOMIC

    def zero(self) -> Obj:
        return {"metadata": {}, **copy.deepcopy(_ZERO.get(self.type_kind, {}))}


class _AtomicItem(Shape):
    atomic = True
    kind = "object"


_ATOMIC_ITEM = _AtomicItem()
OBJECT_META = BuiltinShape("", ("metadata",))
_SCHEMA_SHAPES: dict[int, tuple[Mapping[str, Any], SchemaShape]] = {}


def shape_for(kind: str, schema: Mapping[str, Any] | None, custom: bool) -> Shape:
    """The root shape of a resource: its CRD schema for custom resources, Go-type facts for built-ins."""
    if not custom:
        return BuiltinShape(kind)
    if schema is None:
        return SchemaShape({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, root=True)
    cached = _SCHEMA_SHAPES.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_SCHEMA_SHAPES) > 256:
            _SCHEMA_SHAPES.clear()
        cached = _SCHEMA_SHAPES[id(schema)] = (schema, SchemaShape(schema, root=True))
    return cached[1]


# -- path elements and paths ------------------------------------------------------------------


def _element(item: Any, lt: ListType) -> str | None:
    """The fieldsV1 element naming a list item (`k:{...}` or `v:...`), None when it has no key."""
    if lt.kind == "set":
        return "v:" + _json(item)
    if not isinstance(item, dict):
        return None
    key: dict[str, Any] = {}
    defaults = dict(lt.defaults)
    for k in lt.keys:
        if item.get(k) is not None:
            key[k] = item[k]
        elif k in defaults:
            key[k] = defaults[k]
        else:
            return None
    return "k:" + _json(key)


def _missing_key(item: Any, lt: ListType) -> str:
    defaults = dict(lt.defaults)
    missing = next((k for k in lt.keys if not isinstance(item, dict) or item.get(k) is None), lt.keys[0])
    return missing if missing not in defaults else lt.keys[0]


def _go_string(value: Any) -> str:
    """A value as structured-merge-diff's value.ToString prints it in paths."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    return _json(value)


def element_string(element: str) -> str:
    """`f:spec` -> `.spec`, `k:{"name":"c"}` -> `[name="c"]`, `v:"x"` -> `[="x"]`, `i:0` -> `[0]`."""
    tag, body = element[:2], element[2:]
    if tag == "f:":
        return "." + body
    if tag == "k:":
        return "[" + ",".join(f"{k}={_go_string(v)}" for k, v in json.loads(body).items()) + "]"
    if tag == "v:":
        return f"[={_go_string(json.loads(body))}]"
    return f"[{body}]"


def path_string(path: Path) -> str:
    """A path as kube prints it in conflicts: `.spec.template.spec.containers[name="c"].image`."""
    return "".join(element_string(e) for e in path)


_ORDER = {"f:": 0, "k:": 1, "v:": 2, "i:": 3}


def _sort_key(element: str) -> tuple[int, str]:
    return (_ORDER.get(element[:2], 4), element[2:])


# -- fieldsV1 encoding ------------------------------------------------------------------------


def to_fields_v1(paths: Iterable[Path], node_type: type[dict[str, Any]] = dict) -> Obj:
    """Encode a field set as kube's fieldsV1 trie: `.` marks a member that also has children."""
    trie: Obj = {}
    for path in paths:
        node = trie
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _finish(trie, node_type)


def _finish(node: Obj, node_type: type[dict[str, Any]]) -> Obj:
    if len(node) == 1 and "." in node:
        return node_type()
    items = [(".", node_type())] if "." in node else []
    items += [(e, _finish(node[e], node_type)) for e in sorted((k for k in node if k != "."), key=_sort_key)]
    return node_type(items)


class ManagedFieldsError(ValueError):
    """A managedFields value that cannot be decoded (a request's own is then ignored, as kube does)."""


def from_fields_v1(trie: Any, prefix: Path = ()) -> set[Path]:
    """Decode a fieldsV1 trie into a set of paths."""
    if not isinstance(trie, dict):
        raise ManagedFieldsError("fieldsV1 must be an object")
    out: set[Path] = set()
    for element, child in trie.items():
        if element == ".":
            out.add(prefix)
            continue
        if element[:2] not in _ORDER:
            raise ManagedFieldsError(f"invalid fieldsV1 element {element!r}")
        path = (*prefix, element)
        if not isinstance(child, dict):
            raise ManagedFieldsError("fieldsV1 must be an object")
        if child:
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def iterate(paths: Iterable[Path]) -> Iterator[Path]:
    """Paths in structured-merge-diff's Set.Iterate order: each level's members, then its children."""
    trie: Obj = {}
    for path in paths:
        node = trie
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    yield from _walk_trie(trie, ())


def _walk_trie(node: Obj, prefix: Path) -> Iterator[Path]:
    children = sorted((k for k in node if k != "."), key=_sort_key)
    for element in children:
        if "." in node[element]:
            yield (*prefix, element)
    for element in children:
        yield from _walk_trie(node[element], (*prefix, element))


# -- field sets of values ---------------------------------------------------------------------


class ConfigError(ValueError):
    """An applied configuration structured-merge-diff cannot type (duplicate or keyless list items)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def to_set(value: Any, shape: Shape, strict: bool = False) -> set[Path]:
    """The fields a value sets (ToFieldSet): leaves, list items, empty maps, entries of maps.

    `strict` (an applied configuration) refuses list items without their key and duplicates.
    """
    out: set[Path] = set()
    errors: list[str] = []
    _to_set(value, shape, (), out, errors if strict else None)
    if errors:
        raise ConfigError(errors)
    return out


def _to_set(value: Any, shape: Shape, path: Path, out: set[Path], errors: list[str] | None) -> None:
    if isinstance(value, dict) and shape.maps():
        if shape.atomic:
            out.add(path)
            return
        for k, v in value.items():
            cpath = (*path, "f:" + k)
            _to_set(v, shape.child(k), cpath, out, errors)
            if v is None or (isinstance(v, dict) and not v) or not shape.declared(k):
                out.add(cpath)
        return
    if isinstance(value, list) and shape.lists():
        lt = shape.list_type()
        if lt.kind == "atomic":
            out.add(path)
            return
        seen: set[str] = set()
        for n, item in enumerate(value):
            pe = _element(item, lt)
            if pe is None:
                if errors is not None:
                    errors.append(
                        f"{path_string(path)}: element {n}: associative list with keys has an element that omits "
                        f'key field "{_missing_key(item, lt)}" (and doesn\'t have default value)'
                    )
                continue
            if pe in seen:
                if errors is not None:
                    errors.append(f"{path_string(path)}: duplicate entries for key {element_string(pe)}")
                continue
            seen.add(pe)
            ipath = (*path, pe)
            _to_set(item, shape.item(), ipath, out, errors)
            out.add(ipath)
        return
    out.add(path)


def _resolver(root: Shape) -> Any:
    shapes: dict[Path, Shape] = {(): root}

    def resolve(path: Path) -> Shape:
        shape = shapes.get(path)
        if shape is None:
            parent = resolve(path[:-1])
            element = path[-1]
            shape = parent.child(element[2:]) if element.startswith("f:") else parent.item()
            shapes[path] = shape
        return shape

    return resolve


def ensure_named(paths: Iterable[Path], root: Shape) -> set[Path]:
    """Add every struct field on the way to a member (EnsureNamedFieldsAreMembers); map entries stay out."""
    resolve = _resolver(root)
    out = set(paths)
    for path in list(out):
        for i in range(1, len(path)):
            prefix = path[:i]
            if prefix in out or not path[i - 1].startswith("f:"):
                continue
            parent = resolve(path[: i - 1])
            if parent.maps() and parent.declared(path[i - 1][2:]):
                out.add(prefix)
    return out


# -- compare, merge, remove -------------------------------------------------------------------


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


# Never owned (kube strips them from every set), so never compared.
_UNTRACKED_META = frozenset(
    {"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink", "name", "namespace"}
)
STRIPPED: FieldSet = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", "f:" + k) for k in (*_UNTRACKED_META, "clusterName")}
)


def _top_keys(old: Obj, new: Obj, scope: Scope) -> list[str]:
    keys = list(old) + [k for k in new if k not in old]
    if scope == "status":
        return [k for k in keys if k == "status"]
    return [k for k in keys if k not in ("apiVersion", "kind") and not (scope == "main" and k == "status")]


def compare(old: Obj, new: Obj, shape: Shape, scope: Scope = "all") -> Comparison:
    """Fields added, modified and removed from `old` to `new` (typed.Compare), within `scope`."""
    acc = Comparison()
    for k in _top_keys(old, new, scope):
        lv, rv = old.get(k, MISSING), new.get(k, MISSING)
        if k == "metadata" and (isinstance(lv, dict) or isinstance(rv, dict)):
            lm, rm = (lv if isinstance(lv, dict) else {}), (rv if isinstance(rv, dict) else {})
            meta_shape = shape.child("metadata")
            for mk in list(lm) + [m for m in rm if m not in lm]:
                if mk not in _UNTRACKED_META:
                    path = ("f:metadata", "f:" + mk)
                    _compare(lm.get(mk, MISSING), rm.get(mk, MISSING), meta_shape.child(mk), path, acc)
            continue
        _compare(lv, rv, shape.child(k), ("f:" + k,), acc)
    return acc


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    numbers = type(a) in (int, float) and type(b) in (int, float)
    return (numbers or type(a) is type(b)) and a == b


def _leaf(lv: Any, rv: Any, path: Path, acc: Comparison) -> None:
    if lv is MISSING:
        acc.added.add(path)
    elif rv is MISSING:
        acc.removed.add(path)
    elif not _equal(lv, rv):
        acc.modified.add(path)


def _index(items: list[Any], lt: ListType) -> tuple[list[str], dict[str, Any]] | None:
    """Items by their element (first of duplicates kept); None when an item has no key."""
    order: list[str] = []
    index: dict[str, Any] = {}
    for item in items:
        pe = _element(item, lt)
        if pe is None:
            return None
        if pe not in index:
            index[pe] = item
            order.append(pe)
    return order, index


def _compare(lv: Any, rv: Any, shape: Shape, path: Path, acc: Comparison) -> None:
    if lv is not MISSING and rv is not MISSING and type(lv) is type(rv) and lv == rv:
        return
    lmap, rmap = isinstance(lv, dict), isinstance(rv, dict)
    if (lmap or rmap) and shape.maps() and (lmap or lv in (MISSING, None)) and (rmap or rv in (MISSING, None)):
        lm: Obj = lv if lmap else {}
        rm: Obj = rv if rmap else {}
        if shape.atomic or (not lm and not rm):
            _leaf(lv, rv, path, acc)
            return
        for k in list(lm) + [k for k in rm if k not in lm]:
            _compare(lm.get(k, MISSING), rm.get(k, MISSING), shape.child(k), (*path, "f:" + k), acc)
        _container(lv, rv, path, acc)
        return
    llist, rlist = isinstance(lv, list), isinstance(rv, list)
    if (llist or rlist) and shape.lists() and (llist or lv in (MISSING, None)) and (rlist or rv in (MISSING, None)):
        lt = shape.list_type()
        ll: list[Any] = lv if llist else []
        rl: list[Any] = rv if rlist else []
        lidx, ridx = _index(ll, lt), _index(rl, lt)
        if lt.kind == "atomic" or (not ll and not rl) or lidx is None or ridx is None:
            _leaf(lv, rv, path, acc)
            return
        item = shape.item()
        for pe in ridx[0]:
            _compare(lidx[1].get(pe, MISSING), ridx[1][pe], item, (*path, pe), acc)
        for pe in lidx[0]:
            if pe not in ridx[1]:
                _compare(lidx[1][pe], MISSING, item, (*path, pe), acc)
        _container(lv, rv, path, acc)
        return
    _leaf(lv, rv, path, acc)


def _container(lv: Any, rv: Any, path: Path, acc: Comparison) -> None:
    if lv is MISSING:
        acc.added.add(path)
    elif rv is MISSING:
        acc.removed.add(path)


def _copy(value: Any, drop_nulls: bool) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v, drop_nulls) for k, v in value.items() if not (drop_nulls and v is None)}
    if isinstance(value, list):
        return [_copy(v, drop_nulls) for v in value]
    return value


def merge(live: Any, config: Any, shape: Shape) -> Any:
    """The applied configuration merged into the live object (typed.Merge): maps by key, lists by type."""
    if isinstance(config, dict) and isinstance(live, dict) and shape.maps() and not shape.atomic and (live or config):
        out = dict(live)
        for k, cv in config.items():
            if cv is None and shape.drop_nulls:
                out.pop(k, None)
            else:
                out[k] = merge(live.get(k, MISSING), cv, shape.child(k))
        return out
    if isinstance(config, list) and isinstance(live, list) and shape.lists() and (live or config):
        lt = shape.list_type()
        lidx, ridx = _index(live, lt), _index(config, lt)
        if lt.kind != "atomic" and lidx is not None and ridx is not None:
            return _merge_list(lidx, ridx, shape.item())
    return _copy(config, shape.drop_nulls)


def _merge_list(lhs: tuple[list[str], dict[str, Any]], rhs: tuple[list[str], dict[str, Any]], item: Shape) -> list[Any]:
    """Items of both in structured-merge-diff's order: live-only items stay where they were,
    shared items follow the configuration's order, new items come where the configuration puts them."""
    (lorder, lvals), (rorder, rvals) = lhs, rhs
    shared = iter([pe for pe in rorder if pe in lvals])
    next_shared = next(shared, None)
    out: list[Any] = []
    merged: set[str] = set()
    li = ri = 0
    while li < len(lorder) or ri < len(rorder):
        if li < len(lorder) and ri < len(rorder):
            pe = lorder[li]
            if pe == rorder[ri]:
                merged.add(pe)
                out.append(merge(lvals[pe], rvals[pe], item))
                li, ri = li + 1, ri + 1
                next_shared = next(shared, None)
                continue
            if pe in rvals and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lorder):
            pe = lorder[li]
            if pe not in rvals:
                out.append(lvals[pe])
                li += 1
                continue
            if pe in merged:
                li += 1
                continue
        if ri < len(rorder):
            pe = rorder[ri]
            merged.add(pe)
            out.append(merge(lvals.get(pe, MISSING), rvals[pe], item))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = next(shared, None)
    return out


def remove_items(value: Any, paths: Iterable[Path], shape: Shape) -> Any:
    """`value` without every member of `paths` (typed.RemoveItems); an emptied map or list goes too."""
    trie: Obj = {}
    for path in paths:
        node = trie
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    out = _remove(value, trie, shape)
    return {} if out is MISSING else out


def _remove(value: Any, trie: Obj, shape: Shape) -> Any:
    if isinstance(value, dict) and shape.maps() and not shape.atomic:
        out: Obj = {}
        for k, v in value.items():
            sub = trie.get("f:" + k)
            if sub is None:
                out[k] = v
            elif "." not in sub:
                nv = _remove(v, sub, shape.child(k))
                if nv is not MISSING:
                    out[k] = nv
        return out if out else MISSING
    if isinstance(value, list) and shape.lists():
        lt = shape.list_type()
        if lt.kind == "atomic":
            return value
        items: list[Any] = []
        for item in value:
            pe = _element(item, lt)
            sub = trie.get(pe) if pe is not None else None
            if sub is None:
                items.append(item)
            elif "." not in sub:
                ni = _remove(item, sub, shape.item())
                if ni is not MISSING:
                    items.append(ni)
        return items if items else MISSING
    return value


def prune(merged: Obj, shape: Shape, managed: Iterable[FieldSet], last: FieldSet) -> Obj:
    """Remove what the applier owned last time and no longer applies, unless another manager owns it."""
    if not last:
        return merged
    last_named = ensure_named(last, shape)
    pruned = remove_items(merged, last_named, shape)
    merged_set = ensure_named(to_set(merged, shape), shape)
    owned = ensure_named(set().union(*managed), shape)
    pruned = remove_items(merged, merged_set - (ensure_named(to_set(pruned, shape), shape) | owned), shape)
    dangling = (merged_set - ensure_named(to_set(pruned, shape), shape)) & last_named
    return remove_items(merged, dangling, shape)  # type: ignore[no-any-return]


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
            managers[key] = replace(entry, fields=kept, raw=None)


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
