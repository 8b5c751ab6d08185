"""The three patch formats kube-apiserver accepts: JSON merge, JSON (RFC 6902) and strategic merge."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot apply; `code` is the HTTP status kube-apiserver answers with."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _parse_pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", 400)
    return [_unescape(t) for t in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for tok in tokens:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"doc is missing path: {path!r}: missing value")
            cur = cur[tok]
        elif isinstance(cur, list):
            try:
                idx = int(tok)
            except ValueError:
                raise PatchError(f"doc is missing path: {path!r}: invalid array index {tok!r}") from None
            if not 0 <= idx < len(cur):
                raise PatchError(f"doc is missing path: {path!r}: index out of range")
            cur = cur[idx]
        else:
            raise PatchError(f"doc is missing path: {path!r}: missing value")
    return cur


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _parse_pointer(path), path)


def _remove(doc: Any, path: str) -> Any:
    tokens = _parse_pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise PatchError(f"unable to remove from array at {path!r}: invalid index") from None
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    tokens = _parse_pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            try:
                parent[int(last)] = value
            except (ValueError, IndexError):
                raise PatchError(f"replace operation does not apply: doc is missing path: {path}") from None
        elif last == "-":
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError:
                raise PatchError(f"invalid array index {last!r}") from None
            if not 0 <= idx <= len(parent):
                raise PatchError(f"unable to access invalid index: {idx}: invalid index referenced")
            parent.insert(idx, value)
    else:
        raise PatchError(f"doc is missing path: {path!r}: missing value")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of `doc`; a failed `test` or a missing path is a 422, a malformed patch a 400."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations", 400)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", 400)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation", 400)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"missing from for {kind} operation", 400)
            value = _remove(doc, op["from"]) if kind == "move" else copy.deepcopy(_get(doc, op["from"]))
            doc = _add(doc, path, value)
        else:
            raise PatchError(f"unexpected kind of JSON patch operation: {kind!r}", 400)
    return doc


# Strategic merge patch: the merge keys the operator's built-in objects need. Lists of objects that
# all carry `name` merge by name too; every other list is replaced, as the Go structs declare.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "envFrom": None,
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_MERGE_PRIMITIVES = {"finalizers"}


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        return key if key and all(key in i for i in items) else None
    if field == "ports":
        for key in ("containerPort", "port"):
            if all(key in i for i in items):
                return key
        return None
    if all("name" in i for i in items):
        return "name"
    return None


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch as kubectl and client-go send it, including `$patch`/`$setElementOrder`/...

    Lists merge by key only where the real Go types declare a merge key (approximated by field name).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    for field, order in orders.items():
        result[field] = _reorder(field, result.get(field), order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current = current if isinstance(current, list) else []
    if field in _MERGE_PRIMITIVES and all(not isinstance(v, dict | list) for v in patch):
        return list(current) + [v for v in patch if v not in current]
    plain = [p for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
    key = _merge_key(field, [*current, *plain])
    if key is None:
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return plain
        return copy.deepcopy(plain)
    out = list(current)
    for item in patch:
        if isinstance(item, dict) and item.get("$patch") == "replace":
            return [copy.deepcopy(i) for i in patch if i is not item]
        if not isinstance(item, dict) or key not in item:
            continue
        idx = next((n for n, cur in enumerate(out) if isinstance(cur, dict) and cur.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _reorder(field: str, items: Any, order: list[Any]) -> Any:
    if not isinstance(items, list):
        return items
    key = _merge_key(field, [*items, *order]) if all(isinstance(o, dict) for o in order) else None
    if key is None:
        pos = {v: n for n, v in enumerate(order) if not isinstance(v, dict | list)}
        return sorted(items, key=lambda v: pos.get(v, len(pos)) if not isinstance(v, dict | list) else len(pos))
    pos = {o.get(key): n for n, o in enumerate(order)}
    return sorted(items, key=lambda i: pos.get(i.get(key), len(pos)))
