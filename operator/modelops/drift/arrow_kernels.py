"""The Arrow compute kernels a performance check calls, without importing ``pyarrow.compute``.

Importing ``pyarrow.compute`` writes a Python wrapper, with its docstring, for each of Arrow's
~600 kernels: 80-110 ms of CPU at every start of ``modelops performance check``, spent while the
two files are read (CPU-bound on both cores). The kernels themselves are reached through
``call_function``, which ``pyarrow.compute`` re-exports from ``pyarrow._compute`` (imported by
Arrow's readers anyway); the few wrappers with logic of their own (``cast``, ``fill_null``,
``take``) do here what they do there. Array methods such as ``Array.cast`` or ``is_valid`` import
``pyarrow.compute`` themselves: the check calls these functions instead (a test runs a check and
finds ``pyarrow.compute`` not imported).
"""

from __future__ import annotations

from typing import Any

try:
    from pyarrow._compute import (
        AssumeTimezoneOptions,
        CastOptions,
        PadOptions,
        SetLookupOptions,
        TakeOptions,
        call_function,
    )
except ImportError:  # pragma: no cover - a pyarrow that moved its internals: the public names
    from pyarrow.compute import (  # type: ignore[attr-defined,no-redef]
        AssumeTimezoneOptions,
        CastOptions,
        PadOptions,
        SetLookupOptions,
        TakeOptions,
        call_function,
    )


def cast(values: Any, target_type: Any, *, safe: bool = True) -> Any:
    """``pyarrow.compute.cast``: a checked cast unless ``safe=False``."""
    options = CastOptions.safe(target_type) if safe else CastOptions.unsafe(target_type)
    return call_function("cast", [values], options)


def fill_null(values: Any, fill_value: Any) -> Any:
    """``pyarrow.compute.fill_null``: nulls replaced by a scalar of the values' type."""
    import pyarrow as pa

    if not isinstance(fill_value, pa.Array | pa.ChunkedArray | pa.Scalar):
        fill_value = pa.scalar(fill_value, type=values.type)
    elif values.type != fill_value.type:
        fill_value = pa.scalar(fill_value.as_py(), type=values.type)
    return call_function("coalesce", [values, fill_value])


def take(values: Any, indices: Any) -> Any:
    return call_function("take", [values, indices], TakeOptions(boundscheck=True))


def is_valid(values: Any) -> Any:
    return call_function("is_valid", [values])


def is_null(values: Any) -> Any:
    return call_function("is_null", [values])


def index_in(values: Any, value_set: Any) -> Any:
    return call_function("index_in", [values], SetLookupOptions(value_set))


def utf8_rpad(values: Any, width: int, padding: str) -> Any:
    return call_function("utf8_rpad", [values], PadOptions(width, padding))


def assume_timezone(values: Any, timezone: str) -> Any:
    return call_function("assume_timezone", [values], AssumeTimezoneOptions(timezone))


def call(name: str, *args: Any) -> Any:
    """A kernel without options (``if_else``, ``and``, ``equal``, ``unique``...), by its Arrow name."""
    return call_function(name, list(args))
