"""Structural-schema semantics of custom resources: pruning, defaulting, OpenAPI and CEL validation.

Error wording follows kube-apiserver (k8s.io/kube-openapi validate + apiextensions CEL) closely,
because tests assert on it and users grep for it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

Schema = dict[str, Any]


@dataclass(frozen=True)
class Cause:
    """One field error, as in a Status' `details.causes`."""

    reason: str
    field: str
    detail: str

    def line(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}


def fmt(value: Any) -> str:
    """A value as Go's field.Error prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------------------------
# Pruning and defaulting


def prune(value: Any, schema: Schema | None, path: str = "", root: bool = False) -> tuple[Any, list[str]]:
    """Drop unknown fields and non-nullable nulls; return the pruned value and the dropped paths."""
    dropped: list[str] = []
    return _prune(value, schema or {}, path, root, dropped), dropped


def _prune(value: Any, schema: Schema, path: str, root: bool, dropped: list[str]) -> Any:
    if isinstance(value, dict):
        props: dict[str, Schema] | None = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, val in value.items():
            if (root or embedded) and key in ("apiVersion", "kind", "metadata"):
                out[key] = val
                continue
            sub: Schema | None
            if props is not None and key in props:
                sub = props[key]
            elif isinstance(addl, dict):
                sub = addl
            elif addl is True or preserve:
                out[key] = val
                continue
            else:
                dropped.append(_join(path, key))
                continue
            if val is None and not sub.get("nullable"):
                continue  # pruned before defaulting, as kube-apiserver does
            out[key] = _prune(val, sub, _join(path, key), False, dropped)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], f"{path}[{n}]", False, dropped) for n, v in enumerate(value)]
    return value


def apply_defaults(value: Any, schema: Schema | None) -> Any:
    """Structural defaulting: a missing property with a `default` gets it wherever its parent exists."""
    if not schema:
        return value
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in list(value):
                if key not in props:
                    value[key] = apply_defaults(value[key], addl)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# OpenAPI v3 validation

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_IPV4 = re.compile(r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")


def _check_format(fmt_name: str, value: str) -> bool:
    if fmt_name in ("date-time", "datetime"):
        if not _DATE_TIME.match(value):
            return False
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return False
        return True
    if fmt_name == "date":
        return bool(_DATE.match(value))
    if fmt_name == "uuid":
        return bool(_UUID.match(value))
    if fmt_name == "ipv4":
        return bool(_IPV4.match(value))
    if fmt_name == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    return True  # formats kube-apiserver does not check, or ones we do not: accept


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "string":
        return isinstance(value, str)
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "object":
        return isinstance(value, dict)
    if typ == "array":
        return isinstance(value, list)
    return True


def validate(value: Any, schema: Schema | None, path: str = "", root: bool = False) -> list[Cause]:
    """OpenAPI v3 (structural subset) validation; returns every cause, as kube-apiserver reports all."""
    errs: list[Cause] = []
    if schema:
        _validate(value, schema, path, root, errs)
    return errs


def _invalid(errs: list[Cause], path: str, value: Any, msg: str) -> None:
    errs.append(Cause("FieldValueInvalid", path, f"Invalid value: {fmt(value)}: {msg}"))


def _validate(value: Any, schema: Schema, path: str, root: bool, errs: list[Cause]) -> None:
    where = path or "body"
    if value is None:
        if not schema.get("nullable"):
            typ = schema.get("type")
            if typ:
                errs.append(
                    Cause(
                        "FieldValueTypeInvalid",
                        path,
                        f'Invalid value: "null": {where} in body must be of type {typ}: "null"',
                    )
                )
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
            errs.append(
                Cause(
                    "FieldValueTypeInvalid",
                    path,
                    f"Invalid value: {fmt(type_name(value))}: {where} in body must be of type integer,string: {fmt(type_name(value))}",
                )
            )
            return
    else:
        typ = schema.get("type")
        if typ and not _type_ok(value, typ):
            tn = type_name(value)
            errs.append(
                Cause(
                    "FieldValueTypeInvalid",
                    path,
                    f"Invalid value: {fmt(tn)}: {where} in body must be of type {typ}: {fmt(tn)}",
                )
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(fmt(v) for v in schema["enum"])
        errs.append(
            Cause("FieldValueNotSupported", path, f"Unsupported value: {fmt(value)}: supported values: {supported}")
        )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append(Cause("FieldValueTooLong", path, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            _invalid(errs, path, value, f"{where} in body should be at least {schema['minLength']} chars long")
        if "pattern" in schema and not _compiled(schema["pattern"]).search(value):
            _invalid(errs, path, value, f"{where} in body should match '{schema['pattern']}'")
        if "format" in schema and not _check_format(schema["format"], value):
            _invalid(errs, path, value, f"{where} in body must be of type {schema['format']}: {fmt(value)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, where, errs)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(
                Cause(
                    "FieldValueTooMany", path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
                )
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            _invalid(errs, path, len(value), f"{where} in body should have at least {schema['minItems']} items")
        list_type = schema.get("x-kubernetes-list-type")
        if schema.get("uniqueItems") or list_type == "set":
            seen: list[Any] = []
            for n, item in enumerate(value):
                if item in seen:
                    errs.append(Cause("FieldValueDuplicate", f"{path}[{n}]", f"Duplicate value: {fmt(item)}"))
                seen.append(item)
        if list_type == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen_keys: set[str] = set()
            for n, item in enumerate(value):
                if isinstance(item, dict):
                    k = json.dumps({key: item.get(key) for key in keys}, sort_keys=True)
                    if k in seen_keys:
                        errs.append(Cause("FieldValueDuplicate", f"{path}[{n}]", f"Duplicate value: {k}"))
                    seen_keys.add(k)
        items = schema.get("items")
        if isinstance(items, dict):
            for n, item in enumerate(value):
                _validate(item, items, f"{path}[{n}]", False, errs)
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                errs.append(Cause("FieldValueRequired", _join(path, req), "Required value"))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errs.append(
                Cause(
                    "FieldValueTooMany",
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            _invalid(
                errs, path, len(value), f"{where} in body should have at least {schema['minProperties']} properties"
            )
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key, val in value.items():
            if root and key == "metadata":
                continue
            if key in props:
                _validate(val, props[key], _join(path, key), False, errs)
            elif isinstance(addl, dict):
                _validate(val, addl, _join(path, key), False, errs)
    for sub in schema.get("allOf") or []:
        _validate(value, sub, path, False, errs)
    if schema.get("anyOf") and not any(not validate(value, s, path) for s in schema["anyOf"]):
        _invalid(errs, path, value, f"{where} in body must validate at least one schema (anyOf)")
    if schema.get("oneOf") and sum(1 for s in schema["oneOf"] if not validate(value, s, path)) != 1:
        _invalid(errs, path, value, f"{where} in body must validate one and only one schema (oneOf)")
    if isinstance(schema.get("not"), dict) and not validate(value, schema["not"], path):
        _invalid(errs, path, value, f"{where} in body must not validate the schema (not)")


def _validate_number(value: float, schema: Schema, path: str, where: str, errs: list[Cause]) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    # JSON Schema 2020 spells exclusive bounds as numbers; only lenient servers get here with those.
    if isinstance(ex_lo, int | float) and not isinstance(ex_lo, bool):
        lo, ex_lo = ex_lo, True
    if isinstance(ex_hi, int | float) and not isinstance(ex_hi, bool):
        hi, ex_hi = ex_hi, True
    if lo is not None:
        if ex_lo and value <= lo:
            _invalid(errs, path, value, f"{where} in body should be greater than {lo}")
        elif not ex_lo and value < lo:
            _invalid(errs, path, value, f"{where} in body should be greater than or equal to {lo}")
    if hi is not None:
        if ex_hi and value >= hi:
            _invalid(errs, path, value, f"{where} in body should be less than {hi}")
        elif not ex_hi and value > hi:
            _invalid(errs, path, value, f"{where} in body should be less than or equal to {hi}")
    mult = schema.get("multipleOf")
    if mult and (value / mult) != int(value / mult):
        _invalid(errs, path, value, f"{where} in body should be a multiple of {mult}")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# ---------------------------------------------------------------------------------------------
# CRD checks: what kube-apiserver refuses to accept as a CustomResourceDefinition

_BOOL_FIELDS = (
    "nullable",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
)
_NESTED = ("items", "additionalProperties", "not")


def check_crd_schema(schema: Any, path: str, strict: bool = True) -> list[Cause]:
    """Type errors the Go decoder would reject (400) and structural-schema violations (422).

    Returns causes with reason `BadRequest` for decode errors (fields of the wrong JSON type) and
    `FieldValue*` for structural errors; CEL rules that do not compile are reported too.
    """
    errs: list[Cause] = []
    _check_schema(schema, path, strict, errs, top=True)
    return errs


def _check_schema(schema: Any, path: str, strict: bool, errs: list[Cause], top: bool = False) -> None:
    if not isinstance(schema, dict):
        return
    for key in _BOOL_FIELDS:
        if key in schema and not isinstance(schema[key], bool):
            if strict:
                errs.append(
                    Cause(
                        "BadRequest",
                        f"{path}.{key}",
                        f"json: cannot unmarshal {type_name(schema[key]).replace('integer', 'number')} into Go struct "
                        f"field JSONSchemaProps.{path}.{key} of type bool",
                    )
                )
            else:
                logger.warning("CRD schema %s.%s is not a boolean (a real apiserver rejects it)", path, key)
    untyped = "type" not in schema and not (
        schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    )
    if untyped and (top or not any(k in schema for k in ("allOf", "anyOf", "oneOf", "not"))):
        errs.append(
            Cause(
                "FieldValueRequired",
                f"{path}.type",
                "Required value: must not be empty for specified object fields",
            )
        )
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{path}.properties[{name}]", strict, errs)
    for key in _NESTED:
        if isinstance(schema.get(key), dict):
            _check_schema(schema[key], f"{path}.{key}", strict, errs)
    for key in ("allOf", "anyOf", "oneOf"):
        for n, sub in enumerate(schema.get(key) or []):
            _check_value_schema(sub, f"{path}.{key}[{n}]", errs)
    for n, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        try:
            compile_rule(rule["rule"])
        except Exception as exc:
            errs.append(
                Cause(
                    "FieldValueInvalid",
                    f"{path}.x-kubernetes-validations[{n}].rule",
                    f"Invalid value: {fmt(rule.get('rule'))}: compilation failed: {exc}",
                )
            )


def _check_value_schema(schema: Any, path: str, errs: list[Cause]) -> None:
    if isinstance(schema, dict) and "default" in schema:
        errs.append(Cause("FieldValueForbidden", f"{path}.default", "Forbidden: must be undefined to be structural"))


# ---------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations), with the Kubernetes list/string library functions the CRDs use


def _cel_functions() -> dict[str, Callable[..., Any]]:
    from celpy import celtypes

    def is_sorted(lst: Any) -> Any:
        vals = list(lst)
        return celtypes.BoolType(all(vals[i] <= vals[i + 1] for i in range(len(vals) - 1)))

    def cel_sum(lst: Any) -> Any:
        vals = list(lst)
        if not vals:
            return celtypes.IntType(0)
        total = vals[0]
        for v in vals[1:]:
            total = total + v
        return total

    def cel_min(lst: Any) -> Any:
        return min(list(lst))

    def cel_max(lst: Any) -> Any:
        return max(list(lst))

    def index_of(obj: Any, item: Any) -> Any:
        if isinstance(obj, str):
            return celtypes.IntType(str(obj).find(str(item)))
        vals = list(obj)
        return celtypes.IntType(vals.index(item) if item in vals else -1)

    def last_index_of(obj: Any, item: Any) -> Any:
        if isinstance(obj, str):
            return celtypes.IntType(str(obj).rfind(str(item)))
        vals = list(obj)
        return celtypes.IntType(len(vals) - 1 - vals[::-1].index(item) if item in vals else -1)

    def lower_ascii(s: Any) -> Any:
        return celtypes.StringType(str(s).lower())

    def upper_ascii(s: Any) -> Any:
        return celtypes.StringType(str(s).upper())

    def trim(s: Any) -> Any:
        return celtypes.StringType(str(s).strip())

    def join(lst: Any, sep: Any = "") -> Any:
        return celtypes.StringType(str(sep).join(str(v) for v in lst))

    def split(s: Any, sep: Any) -> Any:
        return celtypes.ListType([celtypes.StringType(p) for p in str(s).split(str(sep))])

    def replace(s: Any, old: Any, new: Any) -> Any:
        return celtypes.StringType(str(s).replace(str(old), str(new)))

    def is_url(s: Any) -> Any:
        return celtypes.BoolType(bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s]+$|^/[^\s]*$", str(s))))

    return {
        "isSorted": is_sorted,
        "sum": cel_sum,
        "min": cel_min,
        "max": cel_max,
        "indexOf": index_of,
        "lastIndexOf": last_index_of,
        "lowerAscii": lower_ascii,
        "upperAscii": upper_ascii,
        "trim": trim,
        "join": join,
        "split": split,
        "replace": replace,
        "isURL": is_url,
    }


_ENV: Any = None
_FUNCS: dict[str, Callable[..., Any]] = {}
_COMPILE_LOCK = threading.Lock()


@lru_cache(maxsize=2048)
def compile_rule(rule: str) -> Any:
    """Compile once per distinct rule; raises on a syntax error (the CRD is then rejected)."""
    global _ENV, _FUNCS
    import celpy

    with _COMPILE_LOCK:  # the lark parser is shared; parse one rule at a time
        if _ENV is None:
            _ENV = celpy.Environment()
            _FUNCS = _cel_functions()
        return _ENV.program(_ENV.compile(rule), functions=_FUNCS)


_OLDSELF = re.compile(r"\boldSelf\b")


def is_transition_rule(rule: str) -> bool:
    return bool(_OLDSELF.search(rule))


def _field_path(base: str, rel: str | None) -> str:
    if not rel:
        return base
    if rel.startswith("."):
        rel = rel[1:]
        return f"{base}.{rel}" if base else rel
    return f"{base}{rel}"


def _evaluate(rule: str, activation: dict[str, Any], has_old: bool) -> tuple[bool | None, str]:
    from celpy import celtypes

    try:
        prog = compile_rule(rule)
        result = prog.evaluate(activation if has_old else {"self": activation["self"]})
    except Exception as exc:
        return None, str(exc)
    if isinstance(result, celtypes.BoolType):
        return bool(result), ""
    return None, str(result)


_REASONS = {
    "FieldValueInvalid": "Invalid value: {value}: {msg}",
    "FieldValueForbidden": "Forbidden: {msg}",
    "FieldValueRequired": "Required value: {msg}",
    "FieldValueDuplicate": "Duplicate value: {value}",
}


def validate_cel(new: Any, old: Any, schema: Schema | None, path: str = "", has_old: bool = False) -> list[Cause]:
    """Evaluate `x-kubernetes-validations`; transition rules (mentioning `oldSelf`) only where the old
    value correlates (object properties, map keys, list-type=map items), as kube-apiserver does."""
    errs: list[Cause] = []
    if schema:
        _cel(new, old, schema, path, has_old, errs)
    return errs


_MEMO: OrderedDict[tuple[str, str, str | None], tuple[bool | None, str]] = OrderedDict()
_MEMO_SIZE = 8192
_MEMO_LOCK = threading.Lock()


def _memo_evaluate(
    rule: str, activation: Callable[[], dict[str, Any]], transition: bool, keys: tuple[str, str | None]
) -> tuple[bool | None, str]:
    """CEL is pure, and celpy is slow (~1 ms a rule): re-validating an unchanged spec on every status
    patch would dominate the server's latency, so results are memoized per (rule, self, oldSelf)."""
    key = (rule, keys[0], keys[1] if transition else None)
    with _MEMO_LOCK:  # several ServerThreads may validate at once
        hit = _MEMO.get(key)
        if hit is not None:
            _MEMO.move_to_end(key)
            return hit
    result = _evaluate(rule, activation(), transition)
    with _MEMO_LOCK:
        _MEMO[key] = result
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return result


def _cel(new: Any, old: Any, schema: Schema, path: str, has_old: bool, errs: list[Cause]) -> None:
    typ = schema.get("type")
    if new is None or (typ and not _type_ok(new, typ)):
        return
    rules = schema.get("x-kubernetes-validations") or []
    keys: tuple[str, str | None] = ("", None)
    cel_values: dict[str, Any] = {}

    def activation() -> dict[str, Any]:
        """self/oldSelf converted to CEL once per node, and only on a memo miss."""
        if not cel_values:
            from celpy.adapter import json_to_cel

            cel_values["self"] = json_to_cel(new)
            if has_old:
                cel_values["oldSelf"] = json_to_cel(old)
        return cel_values

    if rules:
        keys = (json.dumps(new, sort_keys=True), json.dumps(old, sort_keys=True) if has_old else None)
    for rule_def in rules:
        rule = rule_def.get("rule", "")
        transition = is_transition_rule(rule)
        if transition and not has_old:
            continue
        ok, error = _memo_evaluate(rule, activation, transition, keys)
        if ok:
            continue
        field = _field_path(path, rule_def.get("fieldPath"))
        value = fmt(type_name(new))
        if ok is None:
            errs.append(Cause("FieldValueInvalid", field, f"Invalid value: {value}: {error} evaluating rule: {rule}"))
            continue
        msg = rule_def.get("message") or f"failed rule: {rule}"
        if rule_def.get("messageExpression"):
            computed = _message_expression(rule_def["messageExpression"], new, old, transition)
            if computed:
                msg = computed
        reason = rule_def.get("reason") or "FieldValueInvalid"
        template = _REASONS.get(reason, _REASONS["FieldValueInvalid"])
        errs.append(Cause(reason, field, template.format(value=value, msg=msg)))
    if isinstance(new, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) and has_old else {}
        for key, val in new.items():
            sub = props.get(key) if key in props else (addl if isinstance(addl, dict) else None)
            if sub is not None and key != "metadata":
                _cel(val, old_map.get(key), sub, _join(path, key), key in old_map, errs)
    elif isinstance(new, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        map_keys: list[str] = schema.get("x-kubernetes-list-map-keys") or []
        olds: dict[str, Any] = {}
        if schema.get("x-kubernetes-list-type") == "map" and has_old and isinstance(old, list):
            olds = {json.dumps([o.get(k) for k in map_keys]): o for o in old if isinstance(o, dict)}
        for n, item in enumerate(new):
            k = json.dumps([item.get(x) for x in map_keys]) if isinstance(item, dict) and olds else None
            _cel(item, olds.get(k) if k else None, items, f"{path}[{n}]", k is not None and k in olds, errs)


def _message_expression(expr: str, new: Any, old: Any, has_old: bool) -> str:
    from celpy.adapter import json_to_cel

    try:
        prog = compile_rule(expr)
        act = {"self": json_to_cel(new)}
        if has_old:
            act["oldSelf"] = json_to_cel(old)
        result = prog.evaluate(act)
    except Exception:
        return ""
    return str(result) if isinstance(result, str) else ""


def has_cel(schema: Any) -> bool:
    """Whether any node carries CEL rules (skips the CEL walk for plain schemas)."""
    if not isinstance(schema, dict):
        return False
    if schema.get("x-kubernetes-validations"):
        return True
    if any(has_cel(s) for s in (schema.get("properties") or {}).values()):
        return True
    return any(has_cel(schema.get(k)) for k in ("items", "additionalProperties"))
