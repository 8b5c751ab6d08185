"""Metric names in PromQL and Grafana queries, and the names modelops exports.

`metric_names` is a tokenizer, not a parser: it drops strings, label matchers, grouping clauses
and ranges, then keeps each identifier not followed by `(` (a function or aggregation) and not a
keyword. promtool parses the expressions for real (test_dashboard.py, test_alerts.py); this only
finds the names to compare with what the code exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
}
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|' + r"'(?:[^'\\]|\\.)*'")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_NAME_MATCHER = re.compile(r'__name__\s*=~?\s*"([^"]*)"')
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    names = {n for m in _NAME_MATCHER.finditer(expr) for n in m.group(1).split("|")}
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub("[]", text)
    for m in _IDENT.finditer(text):
        if text[m.end() :].lstrip().startswith("("):
            continue
        if m.group(0).lower() in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def grafana_query_names(query: str) -> set[str]:
    """Names in a Grafana variable query (`label_values(selector, label)`) or a panel expression."""
    match = _LABEL_VALUES.match(query)
    return metric_names(match.group(1) if match else query)


def substitute_grafana(expr: str, variables: Iterable[str]) -> str:
    """A panel expression as Prometheus would receive it: built-in intervals filled in, each
    dashboard variable (used inside a regex matcher) replaced by `.*`."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", ".*").replace("$" + name, ".*")
    return expr


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry's families produce (what Prometheus stores and PromQL reads)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count", "_created")}
        elif family.type == "summary":
            names |= {family.name, family.name + "_sum", family.name + "_count", family.name + "_created"}
        else:
            names.add(family.name)
    return names


def family_names(registry: CollectorRegistry) -> set[str]:
    """The metric names as a reader of the docs meets them: families and their counter `_total`."""
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names
