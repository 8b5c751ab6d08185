"""ObjectMeta validation kube-apiserver applies to every kind: names, labels, annotations, owners.

These are the rejections an operator meets first on a real cluster (a label value with `+`, a
CronJob name over 52 characters, a Service named `1-model`), so the sandbox rejects them too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelops.sandbox.resources import Resource
from modelops.sandbox.schema import Cause, fmt

_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_PART_RE = re.compile(f"^{_NAME_PART}$")
_LABEL_VALUE_RE = re.compile(f"^({_NAME_PART})?$")
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_SUBDOMAIN_RE = re.compile(f"^{_SUBDOMAIN}$")
_LABEL_1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_1123_RE = re.compile(f"^{_LABEL_1123}$")
_LABEL_1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_1035_RE = re.compile(f"^{_LABEL_1035}$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    f"start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{_SUBDOMAIN}')"
)
LABEL_1123_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    f"end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{_LABEL_1123}')"
)
LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    f"character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{_LABEL_1035}')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_NAME_PART}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    f"validation is '({_NAME_PART})?')"
)
ANNOTATIONS_MAX = 256 * 1024

# Kinds whose names end up in DNS or in label values, so kube-apiserver restricts them further.
_DNS1035_KINDS = {("", "services")}
_DNS1123_LABEL_KINDS = {("", "namespaces")}
_MAX_NAME = {("batch", "cronjobs"): 52, ("batch", "jobs"): 63, ("apps", "statefulsets"): 63}
_FREE_NAME_KINDS = {("", "events"), ("events.k8s.io", "events")}


def _invalid(field: str, value: Any, msg: str) -> Cause:
    return Cause("FieldValueInvalid", field, f"Invalid value: {fmt(value)}: {msg}")


def name_causes(res: Resource, name: str) -> list[Cause]:
    if res.key in _FREE_NAME_KINDS:
        return (
            []
            if "/" not in name and name not in (".", "..")
            else [_invalid("metadata.name", name, "may not contain '/'")]
        )
    causes = []
    if res.key in _DNS1035_KINDS:
        if len(name) > 63 or not _LABEL_1035_RE.match(name):
            causes.append(_invalid("metadata.name", name, LABEL_1035_MSG))
    elif res.key in _DNS1123_LABEL_KINDS:
        if len(name) > 63 or not _LABEL_1123_RE.match(name):
            causes.append(_invalid("metadata.name", name, LABEL_1123_MSG))
    elif len(name) > 253 or not _SUBDOMAIN_RE.match(name):
        causes.append(_invalid("metadata.name", name, SUBDOMAIN_MSG))
    limit = _MAX_NAME.get(res.key)
    if limit is not None and len(name) > limit:
        causes.append(_invalid("metadata.name", name, f"must be no more than {limit} characters"))
    return causes


def _qualified_name(field: str, key: str) -> list[Cause]:
    """A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain."""
    prefix, _, name = key.rpartition("/")
    causes = []
    if "/" in prefix or (key.count("/") == 1 and not prefix):
        return [_invalid(field, key, "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                         "and must start and end with an alphanumeric character with an optional DNS subdomain prefix "
                         "and '/' (e.g. 'example.com/MyName')")]  # fmt: skip
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        causes.append(_invalid(field, key, "prefix part " + SUBDOMAIN_MSG))
    if not name:
        causes.append(_invalid(field, key, "name part must be non-empty"))
    elif len(name) > 63:
        causes.append(_invalid(field, key, "name part must be no more than 63 characters"))
    elif not _NAME_PART_RE.match(name):
        causes.append(_invalid(field, key, NAME_PART_MSG))
    return causes


def metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    """Labels, annotations and ownerReferences, on create and on every update."""
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [_invalid("metadata.labels", labels, "must be a map of strings")]
    for key, value in labels.items():
        causes += _qualified_name("metadata.labels", key)
        if not isinstance(value, str):
            causes.append(_invalid("metadata.labels", value, "must be a string"))
        elif len(value) > 63:
            causes.append(_invalid("metadata.labels", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(value):
            causes.append(_invalid("metadata.labels", value, LABEL_VALUE_MSG))
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        return [*causes, _invalid("metadata.annotations", annotations, "must be a map of strings")]
    size = 0
    for key, value in annotations.items():
        causes += _qualified_name("metadata.annotations", key.lower())
        if not isinstance(value, str):
            causes.append(_invalid("metadata.annotations", value, "must be a string"))
            continue
        size += len(key) + len(value)
    if size > ANNOTATIONS_MAX:
        causes.append(
            Cause(
                "FieldValueTooLong", "metadata.annotations", f"Too long: may not be more than {ANNOTATIONS_MAX} bytes"
            )
        )
    owners = meta.get("ownerReferences") or []
    controllers = 0
    for n, ref in enumerate(owners if isinstance(owners, list) else []):
        field = "metadata.ownerReferences"
        if not isinstance(ref, dict):
            causes.append(_invalid(f"{field}[{n}]", ref, "must be an object"))
            continue
        for part in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(part):
                causes.append(_invalid(f"{field}.{part}", ref.get(part, ""), f"{part} must not be empty"))
        if ref.get("controller"):
            controllers += 1
    if controllers > 1:
        causes.append(
            _invalid(
                "metadata.ownerReferences",
                json.dumps(owners, separators=(",", ":")),
                "Only one reference can have Controller set to true",
            )
        )
    finalizers = meta.get("finalizers") or []
    for f in finalizers if isinstance(finalizers, list) else []:
        if not isinstance(f, str) or not f:
            causes.append(_invalid("metadata.finalizers", f, "name part must be non-empty"))
        else:
            causes += _qualified_name("metadata.finalizers", f)
    return causes


def event_causes(res: Resource, obj: dict[str, Any], namespace: str) -> list[Cause]:
    """core/v1 Events: the involved object's namespace must be the Event's (as kopf and kubectl expect)."""
    if res.key != ("", "events"):
        return []
    involved = obj.get("involvedObject") or {}
    ns = involved.get("namespace")
    if ns and ns != namespace:
        return [_invalid("involvedObject.namespace", ns, "does not match event.namespace")]
    return []
