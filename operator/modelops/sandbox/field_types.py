"""What server-side apply needs to know about an object's type: which maps are structs (their
fields are owned through their leaves) or atomic, which lists are atomic, sets, or maps of items
by key. Custom resources say it in their CRD schema (`x-kubernetes-list-type`, `-list-map-keys`,
`-map-type`); for built-in kinds, which the sandbox does not schema-validate, the few facts of
their Go types that change what apply does are tabled here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Obj = dict[str, Any]
Path = tuple[str, ...]


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
