"""Open Inference Protocol v2 tensors: decode request JSON into numpy, encode numpy back.

Hand-written rather than pydantic: this runs on every request, and a few dict look-ups and one
``np.asarray`` per input cost a fraction of model validation. Every malformed input raises
``BadRequest`` naming the problem, so the server answers 4xx and never 500 on input alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# Protocol datatype -> numpy dtype. BYTES tensors hold Python str/bytes in an object array.
DATATYPES: dict[str, npt.DTypeLike] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}

# Largest finite magnitude of each float datatype narrower than Python's: larger input overflows.
FLOAT_LIMITS: dict[str, float] = {
    "FP16": float(np.finfo(np.float16).max),
    "FP32": float(np.finfo(np.float32).max),
}

_NAME_TO_DATATYPE: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}


class BadRequest(Exception):
    """A client error: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded inference request: inputs by name, in request order."""

    id: str | None
    inputs: dict[str, np.ndarray[Any, Any]]
    datatypes: dict[str, str]
    outputs: list[str] | None
    parameters: dict[str, Any] | None


_DTYPE_TO_DATATYPE: dict[np.dtype[Any], str] = {np.dtype(name): dt for name, dt in _NAME_TO_DATATYPE.items()}


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The protocol datatype of a numpy array; strings and objects are BYTES."""
    return _DTYPE_TO_DATATYPE.get(array.dtype, "BYTES")


def _shape(name: str, raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    for dim in raw:
        if type(dim) is not int or dim < 0:
            raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers, got {raw!r}")
    return raw


def _bytes_array(name: str, data: Any) -> np.ndarray[Any, Any]:
    flat: list[Any] = []
    stack = [data]
    while stack:  # iterative flatten: deep nesting must not hit the recursion limit
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str | bytes):
            flat.append(item)
        else:
            raise BadRequest(f"input {name!r}: BYTES data must hold strings, got {type(item).__name__}")
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array


def decode_input(raw: Any) -> tuple[str, str, np.ndarray[Any, Any]]:
    """One ``$request_input`` -> (name, datatype, array reshaped to its declared shape)."""
    if not isinstance(raw, dict):
        raise BadRequest("each entry of 'inputs' must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("an input has no 'name' (a non-empty string)")
    if "shape" not in raw:
        raise BadRequest(f"input {name!r}: missing 'shape'")
    shape = _shape(name, raw["shape"])
    datatype = raw.get("datatype")
    if not isinstance(datatype, str):
        raise BadRequest(f"input {name!r}: missing 'datatype'")
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")
    if "data" not in raw:
        raise BadRequest(f"input {name!r}: missing 'data'")
    data = raw["data"]
    params = raw.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f"input {name!r}: 'parameters' must be an object")
    if not isinstance(data, list):
        data = [data]  # a scalar tensor; its element count is still checked against the shape
    if datatype == "BYTES":
        array = _bytes_array(name, data)
    else:
        try:
            if datatype in FLOAT_LIMITS:
                with np.errstate(over="raise"):  # a number too large for the type is bad input, not inf
                    array = np.asarray(data, dtype=dtype)
            else:
                array = np.asarray(data, dtype=dtype)
        except FloatingPointError:
            raise BadRequest(_overflow_message(name, datatype, data)) from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise BadRequest(f"input {name!r}: data is not a valid {datatype} tensor: {exc}") from None
        if datatype == "BOOL" and array.size and not _all_bool(data):
            raise BadRequest(f"input {name!r}: BOOL data must hold true/false values")
    expected = math.prod(shape)
    if array.size != expected:
        raise BadRequest(f"input {name!r}: shape {shape} needs {expected} elements, data has {array.size}")
    if array.shape != tuple(shape):
        array = array.reshape(shape)
    return name, datatype, array


def _overflow_message(name: str, datatype: str, data: Any) -> str:
    limit = FLOAT_LIMITS[datatype]
    try:
        wide = np.asarray(data, dtype=np.float64).ravel()
        value = f" {wide[np.abs(wide) > limit][0]:g}"
    except (ValueError, TypeError, IndexError):
        value = ""
    return (
        f"input {name!r}: value{value} overflows {datatype} (largest finite magnitude {limit:g}); "
        "scale the feature or send a wider datatype such as FP64"
    )


def _all_bool(data: list[Any]) -> bool:
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif type(item) is not bool:
            return False
    return True


def decode_request(body: Any) -> InferRequest:
    """A parsed JSON body -> InferRequest, or BadRequest naming the first problem."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("missing input: 'inputs' must be a non-empty list of tensors")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    datatypes: dict[str, str] = {}
    for raw in raw_inputs:
        name, datatype, array = decode_input(raw)
        if name in inputs:
            raise BadRequest(f"input {name!r} appears twice")
        inputs[name] = array
        datatypes[name] = datatype
    outputs: list[str] | None = None
    raw_outputs = body.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
        outputs = []
        for out in raw_outputs:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise BadRequest("each entry of 'outputs' must be an object with a string 'name'")
            outputs.append(out["name"])
    return InferRequest(request_id, inputs, datatypes, outputs, parameters)


def encode_output(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A ``$response_output``: flat row-major data, which every v2 client accepts."""
    datatype = datatype_of(array)
    shape = list(array.shape)
    if datatype == "BYTES":
        data: Any = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in array.ravel().tolist()]
    elif array.ndim == 1 and array.flags.c_contiguous:
        data = array  # orjson serialises contiguous numpy arrays natively
    else:
        data = np.ascontiguousarray(array).ravel()
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def tensor_meta(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    """A ``$metadata_tensor``."""
    return {"name": name, "datatype": datatype, "shape": shape}
