"""Field sets of objects, as kube-apiserver's structured-merge-diff computes them for field ownership.

A field set is a set of paths, a path a tuple of kube's fieldsV1 elements (`f:spec`,
`k:{"name":"c"}`, `v:"x"`, `i:0`). Here: the fields a value sets, the fields two values differ in,
the merge of an applied configuration into a live object, the removal of fields, and the fieldsV1
encoding. Pure: values in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from modelops.sandbox.field_types import ListType, Shape

Obj = dict[str, Any]
Path = tuple[str, ...]
FieldSet = frozenset[Path]
Scope = Literal["all", "main", "status"]


class _Missing:
    """An absent field, as opposed to one holding null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_json = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


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
    """The key field an item lacks (without a default to stand in), for the error message."""
    defaults = dict(lt.defaults)
    present = item if isinstance(item, dict) else {}
    return next((k for k in lt.keys if k not in defaults and present.get(k) is None), lt.keys[0])


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


def _resolver(root: Shape) -> Callable[[Path], Shape]:
    """The shape at a path, memoized: paths share their prefixes."""
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
    """What changed from one object to another, as the fields each change touches."""

    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


# Never owned (kube strips them from every set), so never compared.
UNTRACKED_META = frozenset(
    {"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink", "name", "namespace"}
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
                if mk not in UNTRACKED_META:
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
