"""ONNX models through onnxruntime (CPU).

Inputs and outputs are the graph's own, by name; only tensor outputs are served (a
skl2onnx classifier needs ``zipmap=False`` to return probabilities as a tensor).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelops.server.frameworks import InvalidInput, Model, Signature, TensorSpec, default_feature_names

_ORT_TYPES: dict[str, tuple[str, Any]] = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(double)": ("FP64", np.float64),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(int8)": ("INT8", np.int8),
    "tensor(int16)": ("INT16", np.int16),
    "tensor(int32)": ("INT32", np.int32),
    "tensor(int64)": ("INT64", np.int64),
    "tensor(uint8)": ("UINT8", np.uint8),
    "tensor(uint16)": ("UINT16", np.uint16),
    "tensor(uint32)": ("UINT32", np.uint32),
    "tensor(uint64)": ("UINT64", np.uint64),
    "tensor(bool)": ("BOOL", np.bool_),
    "tensor(string)": ("BYTES", np.object_),
}


def _dims(shape: Sequence[Any]) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


class OnnxModel(Model):
    """An onnxruntime InferenceSession; one intra-op thread, since workers scale by process."""

    platform = "onnxruntime"

    def __init__(self) -> None:
        self._session: Any = None
        self._inputs: dict[str, tuple[TensorSpec, Any]] = {}
        self._outputs: list[TensorSpec] = []
        self._signature: Signature | None = None

    def load(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._inputs = {}
        for node in self._session.get_inputs():
            datatype, dtype = _ORT_TYPES.get(node.type, ("BYTES", np.object_))
            self._inputs[node.name] = (TensorSpec(node.name, datatype, _dims(node.shape)), dtype)
        self._outputs = [
            TensorSpec(node.name, _ORT_TYPES[node.type][0], _dims(node.shape))
            for node in self._session.get_outputs()
            if node.type in _ORT_TYPES
        ]
        if not self._outputs:
            raise TypeError(f"{path} has no tensor outputs (for skl2onnx classifiers use options zipmap=False)")
        specs = [spec for spec, _ in self._inputs.values()]
        self._signature = Signature(
            specs,
            self._outputs,
            [o.name for o in self._outputs],
            {s.name: default_feature_names(s) for s in specs},
        )

    def signature(self) -> Signature:
        if self._signature is None:
            raise RuntimeError("model not loaded")
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], outputs: Sequence[str], parameters: dict[str, Any] | None
    ) -> dict[str, np.ndarray[Any, Any]]:
        feed: dict[str, np.ndarray[Any, Any]] = {}
        if len(inputs) == 1 and len(self._inputs) == 1:
            # A single-input graph accepts its one tensor under any name, like the sklearn runtime.
            ((spec, dtype),) = self._inputs.values()
            feed[spec.name] = self._check(spec, dtype, next(iter(inputs.values())))
        else:
            for name, (spec, dtype) in self._inputs.items():
                if name not in inputs:
                    raise InvalidInput(f"missing input {name!r}; the model needs {', '.join(self._inputs)}")
                feed[name] = self._check(spec, dtype, inputs[name])
        known = {o.name for o in self._outputs}
        for name in outputs:
            if name not in known:
                raise InvalidInput(f"unknown output {name!r}; this model has {', '.join(sorted(known))}")
        try:
            values = self._session.run(list(outputs), feed)
        except Exception as exc:
            if type(exc).__name__ == "InvalidArgument":  # onnxruntime's own input validation
                raise InvalidInput(f"model rejected the input: {exc}") from None
            raise
        return {name: np.asarray(v) for name, v in zip(outputs, values, strict=True)}

    @staticmethod
    def _check(spec: TensorSpec, dtype: Any, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if array.ndim == 1 and len(spec.shape) == 2 and spec.shape[1] == array.shape[0]:
            array = array.reshape(1, -1)
        if array.ndim != len(spec.shape):
            raise InvalidInput(f"input {spec.name!r}: expected shape {spec.shape}, got {list(array.shape)}")
        for want, got in zip(spec.shape, array.shape, strict=True):
            if want >= 0 and want != got:
                if len(spec.shape) == 2 and want == spec.shape[1]:
                    raise InvalidInput(f"model expects {want} features, got {array.shape[1]}")
                raise InvalidInput(f"input {spec.name!r}: expected shape {spec.shape}, got {list(array.shape)}")
        if array.dtype != dtype:
            try:
                array = array.astype(dtype)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"input {spec.name!r}: cannot convert to {spec.datatype}: {exc}") from None
        return array
