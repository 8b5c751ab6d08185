"""Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which kubectl uses.

Custom resources get their CRD's additionalPrinterColumns (so `kubectl get mv` shows MODEL VERSION
STAGE PHASE AGE); built-ins get a few of kube-apiserver's printer columns.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelops.sandbox import printers
from modelops.sandbox.resources import Resource

Obj = dict[str, Any]

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically.",
    "priority": 0,
}
AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
    "priority": 0,
}

_TOKEN = re.compile(r"\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_UNION = re.compile(r"\[\s*('[^']*'(?:\s*,\s*'[^']*')+)\s*\]")


def jsonpath(obj: Any, path: str) -> Any:
    """The simple JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a['x.y']`, and the union
    `.a['x','y']`, whose first present key wins (the table shows client-go's first result)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    cur = obj
    pos = 0
    while pos < len(path):
        union = _UNION.match(path, pos)
        if union:
            rest = path[union.end() :]
            for key in re.findall(r"'([^']*)'", union.group(1)):
                if isinstance(cur, dict) and key in cur:
                    found = jsonpath(cur[key], rest) if rest else cur[key]
                    if found is not None:
                        return found
            return None
        m = _TOKEN.match(path, pos)
        if not m:
            return None
        pos = m.end()
        name, idx, q1, q2 = m.groups()
        key = name if name is not None else (q1 if q1 is not None else q2)
        if idx is not None:
            if not isinstance(cur, list) or int(idx) >= len(cur):
                return None
            cur = cur[int(idx)]
        elif isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            return None
    return cur


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration: what kubectl shows under AGE."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return f"{h // 24 // 365}y" if dy == 0 else f"{h // 24 // 365}y{dy}d"
    return f"{h // 24 // 365}y"


def _age(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - ts).total_seconds())


Cell = Callable[[Obj], Any]


def _col(name: str, typ: str, fn: Cell) -> tuple[dict[str, Any], Cell]:
    return ({"name": name, "type": typ, "format": "", "description": "", "priority": 0}, fn)


def _ready(o: Obj) -> str:
    return f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}"


_BUILTIN: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "namespaces"): [_col("Status", "string", lambda o: jsonpath(o, ".status.phase"))],
    ("", "pods"): [_col("Status", "string", lambda o: jsonpath(o, ".status.phase"))],
    ("", "configmaps"): [_col("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    ("", "secrets"): [
        _col("Type", "string", lambda o: o.get("type", "Opaque")),
        _col("Data", "integer", lambda o: len(o.get("data") or {})),
    ],
    ("", "services"): [
        _col("Type", "string", lambda o: jsonpath(o, ".spec.type") or "ClusterIP"),
        _col("Cluster-IP", "string", lambda o: jsonpath(o, ".spec.clusterIP") or "<none>"),
    ],
    ("apps", "deployments"): [
        _col("Ready", "string", _ready),
        _col("Up-to-date", "integer", lambda o: jsonpath(o, ".status.updatedReplicas") or 0),
        _col("Available", "integer", lambda o: jsonpath(o, ".status.availableReplicas") or 0),
    ],
    ("batch", "jobs"): [
        _col("Completions", "string",
             lambda o: f"{jsonpath(o, '.status.succeeded') or 0}/{jsonpath(o, '.spec.completions') or 1}"),
    ],
    ("batch", "cronjobs"): [
        _col("Schedule", "string", lambda o: jsonpath(o, ".spec.schedule")),
        _col("Suspend", "boolean", lambda o: bool(jsonpath(o, ".spec.suspend"))),
    ],
}  # fmt: skip


def _columns(res: Resource) -> tuple[list[dict[str, Any]], list[Cell]]:
    if not res.is_custom and res.key in printers.PRINTERS:  # kube's own printer for this kind
        columns, row = printers.PRINTERS[res.key]
        return [dict(c) for c in columns], [functools.partial(_nth, row, i) for i in range(len(columns))]
    defs: list[dict[str, Any]] = [NAME_COLUMN]
    cells: list[Cell] = [lambda o: o["metadata"]["name"]]
    if res.is_custom and res.printer_columns:
        for col in res.printer_columns:
            defs.append(
                {
                    "name": col["name"],
                    "type": col.get("type", "string"),
                    "format": col.get("format", ""),
                    "description": col.get("description", ""),
                    "priority": int(col.get("priority", 0)),
                }
            )
            cells.append(_printer_cell(col))
        return defs, cells
    for d, fn in _BUILTIN.get(res.key, []):
        defs.append(d)
        cells.append(fn)
    defs.append(AGE_COLUMN)
    cells.append(lambda o: _age(o["metadata"].get("creationTimestamp")))
    return defs, cells


def _nth(row: printers.Row, i: int, obj: Obj) -> Any:
    return row(obj)[i]


def _printer_cell(col: dict[str, Any]) -> Cell:
    path, typ = col.get("jsonPath", ""), col.get("type", "string")

    def cell(o: Obj) -> Any:
        value = jsonpath(o, path)
        if value is None:
            return None
        if typ == "date":
            return _age(value)
        if typ in ("integer", "number", "boolean") and isinstance(value, int | float | bool):
            return value
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"))
        return str(value) if typ == "string" else value

    return cell


def partial(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(
    res: Resource, objs: list[Obj], rv: str, include: str = "", headers: bool = True, meta: Obj | None = None
) -> Obj:
    defs, cells = _columns(res)
    rows = []
    for o in objs:
        embedded: Obj | None
        if include == "None":
            embedded = None
        elif include == "Object":
            embedded = o
        else:
            embedded = partial(o)
        row: Obj = {"cells": [fn(o) for fn in cells]}
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    metadata = dict(meta or {})
    metadata["resourceVersion"] = rv
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs if headers else [],
        "rows": rows,
    }
