"""Label and field selectors with kube-apiserver's grammar and matching rules."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that kube-apiserver would reject with 400 BadRequest."""


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(expr: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` has two requirements."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (p.strip() for p in parts) if p]


def label_matcher(expr: str | None) -> Matcher:
    """Compile a labelSelector (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`); matches `metadata.labels`."""
    if not expr:
        return lambda obj: True
    reqs: list[Callable[[Mapping[str, str]], bool]] = []
    for part in _split(expr):
        eq = _EQ_RE.match(part)
        if eq:
            key, op, val = eq.groups()
            reqs.append(_requirement("!=" if op == "!=" else "=", key, frozenset([val])))
            continue
        st = _SET_RE.match(part)
        if not st:
            raise SelectorError(f"unable to parse requirement: {part!r}")
        neg, key, op, vals = st.groups()
        if neg and op:
            raise SelectorError(f"unable to parse requirement: {part!r}")
        values = frozenset(v.strip() for v in (vals or "").split(",") if v.strip())
        reqs.append(_requirement(op or ("!exists" if neg else "exists"), key, values))

    def match(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return match


def _requirement(op: str, key: str, values: frozenset[str]) -> Callable[[Mapping[str, str]], bool]:
    """One requirement; `!=` and `notin` also match objects without the label, as in Kubernetes."""

    def check(labels: Mapping[str, str]) -> bool:
        if op in ("=", "in"):
            return key in labels and labels[key] in values
        if op in ("!=", "notin"):
            return key not in labels or labels[key] not in values
        if op == "exists":
            return key in labels
        return key not in labels

    return check


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(
    expr: str | None, fields: Callable[[str], Callable[[Mapping[str, Any]], str]] | None = None
) -> Matcher:
    """Compile a fieldSelector (`=`, `==`, `!=`); `fields` maps a label to what it reads (and refuses the
    labels the kind does not support, see fieldlabels.resolver); without it any dotted path is accepted."""
    if not expr:
        return lambda obj: True
    reqs: list[tuple[Callable[[Mapping[str, Any]], str], bool, str]] = []
    for part in _split(expr):
        m = re.match(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        path, op, val = m.groups()
        get = fields(path) if fields is not None else functools.partial(_field_value, path=path)
        reqs.append((get, op != "!=", val))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((get(obj) == v) == eq for get, eq, v in reqs)

    return match


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions) against labels; empty matches all."""
    if not isinstance(selector, Mapping):
        return False
    match_labels, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False  # stored as given (built-ins are not schema-validated): a malformed selector selects nothing
    for k, v in match_labels.items():
        if labels.get(k) != v:
            return False
    for expr in expressions:
        if not isinstance(expr, Mapping):
            return False
        key, op, values = str(expr.get("key")), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
