"""Argo CD's Lua VM, reproduced for tests: real Lua 5.1 (lupa) with only what Argo CD gives a
health check or action from ``argocd-cm``.

Argo CD runs these scripts in gopher-lua (a Lua 5.1) with ``SkipOpenLibs`` unless the
customization sets ``useOpenLibs`` (util/lua/lua.go ``runLua``): it opens the package, base and
table libraries and a "safe" os module (``time`` and ``date`` only, reached through
``require("os")``); ``string``, ``math``, ``io``, ``os`` (as a global), ``debug`` and
``coroutine`` are absent, and so is the string metatable, so ``("x"):len()`` fails too. The
object is the global ``obj``, decoded from JSON (``null`` is ``nil``); the script's return value is
encoded back to JSON, where an empty table becomes ``[]`` and Argo CD puts back an empty map that
the object had there (``cleanReturnedObj``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lupa.lua51 import LuaError, LuaRuntime

Obj = dict[str, Any]

HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")

_BASE = (
    "assert",
    "collectgarbage",
    "error",
    "getmetatable",
    "ipairs",
    "load",
    "loadstring",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawset",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
    "_VERSION",
)

_SANDBOX = """
local base_names, fn, obj = ...
local env = {}
for _, name in ipairs(base_names) do
  env[name] = _G[name]
end
env.table = {concat = table.concat, insert = table.insert, remove = table.remove, sort = table.sort,
             getn = table.getn, maxn = table.maxn}
local safe_os = {time = os.time, date = os.date}
env.package = {loaded = {os = safe_os}}
env.require = function(name)
  if name == "os" then
    return safe_os
  end
  error("module '" .. tostring(name) .. "' not found", 2)
end
env._G = env
env.obj = obj
setfenv(fn, env)
return fn()
"""

_COMPILE = """
local script = ...
local fn, err = loadstring(script, "=script")
if fn == nil then
  error(err, 0)
end
return fn
"""


class LuaScriptError(Exception):
    """The script raised (Argo CD shows the message as the action's or health check's error)."""


class Sandbox:
    def __init__(self) -> None:
        self.lua = LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
        self.lua.execute('debug.setmetatable("", nil)')  # gopher-lua without the string library has none
        self._run = self.lua.eval("function(...) " + _SANDBOX + " end")
        self._compile = self.lua.eval("function(...) " + _COMPILE + " end")
        self._compiled: dict[str, Any] = {}
        self._names = self._to_lua(list(_BASE))

    # --- conversions ---------------------------------------------------------------------------

    def _to_lua(self, value: Any) -> Any:
        if isinstance(value, dict | list):  # JSON-like, as Argo CD's decodeValue: lupa's converter (fast)
            return self.lua.table_from(_drop_nulls(value), recursive=True)
        if isinstance(value, Mapping):
            table = self.lua.table()
            for k, v in value.items():
                if v is not None:
                    table[str(k)] = self._to_lua(v)
            return table
        if isinstance(value, list | tuple):
            table = self.lua.table()
            for i, v in enumerate(value, start=1):
                table[i] = self._to_lua(v)
            return table
        if isinstance(value, bool | str) or value is None:
            return value
        if isinstance(value, int | float):
            return float(value) if isinstance(value, float) else value
        raise TypeError(f"cannot pass {type(value).__name__} to Lua")

    def _from_lua(self, value: Any) -> Any:
        if self.lua.eval("type")(value) == "table":
            items = list(value.items())
            keys = [k for k, _ in items]
            if not items or (
                all(isinstance(k, int | float) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1))
            ):
                return [self._from_lua(value[i]) for i in range(1, len(items) + 1)]
            return {str(k): self._from_lua(v) for k, v in items}
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)  # JSON numbers: Lua 5.1 has only doubles
        return value

    def run(self, script: str, obj: Obj) -> Any:
        try:
            fn = self._compiled.get(script)
            if fn is None:
                fn = self._compiled[script] = self._compile(script)
            result = self._run(self._names, fn, self._to_lua(obj))
        except LuaError as exc:
            raise LuaScriptError(str(exc)) from exc
        return self._from_lua(result)

    # --- what Argo CD does with the result -----------------------------------------------------

    def health(self, script: str, obj: Obj) -> Obj:
        """``ExecuteHealthLua``: a table with a valid status, else Unknown."""
        result = self.run(script, obj)
        if not isinstance(result, dict):
            raise LuaScriptError(f"expect table output from Lua script, not {type(result).__name__}")
        if result.get("status") not in HEALTH_STATUSES:
            return {"status": "Unknown", "message": "Lua returned an invalid health status"}
        return {"status": result["status"], "message": result.get("message", "")}

    def discovery(self, script: str, obj: Obj) -> dict[str, bool]:
        """``ExecuteResourceActionDiscovery``: action name -> disabled."""
        result = self.run(script, obj)
        if result == []:
            return {}
        if not isinstance(result, dict):
            raise LuaScriptError(f"expect table output from Lua script, not {type(result).__name__}")
        return {name: bool(isinstance(v, dict) and v.get("disabled") is True) for name, v in result.items()}

    def action(self, script: str, obj: Obj) -> Obj:
        """``ExecuteResourceAction`` (an old-style action returning the patched object)."""
        result = self.run(script, obj)
        if not isinstance(result, dict):
            raise LuaScriptError(f"expect table output from Lua script, not {type(result).__name__}")
        return clean_returned(result, obj)


def _drop_nulls(value: Any) -> Any:
    """JSON null is Lua nil: a key with null is absent."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def clean_returned(new: Any, old: Any) -> Any:
    """Argo CD's ``cleanReturnedObj``: an empty map that Lua turned into ``[]`` becomes a map again."""
    if isinstance(new, dict) and isinstance(old, Mapping):
        out = dict(new)
        for key, old_value in old.items():
            if key not in new:
                continue
            if isinstance(new[key], list) and isinstance(old_value, Mapping) and not new[key]:
                out[key] = dict(old_value)
            else:
                out[key] = clean_returned(new[key], old_value)
        return out
    if isinstance(new, list) and isinstance(old, list):
        return [clean_returned(n, old[i]) if i < len(old) else n for i, n in enumerate(new)]
    return new
