"""Test-only frameworks, plugged in through the same interface as sklearn and ONNX."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelops.server.frameworks import InvalidInput, Model, Signature, TensorSpec


class ProtocolExampleModel(Model):
    """The model of the protocol's documented example: input0 UINT32 [2, 2] and input1 BOOL,
    answering output0, a [3, 2] FP32 tensor 1.0, 1.1, 2.0, 2.1, 3.0, 3.1."""

    platform = "protocol-example"

    def load(self, path: Path) -> None:
        self.loaded_from = path

    def signature(self) -> Signature:
        return Signature(
            inputs=[TensorSpec("input0", "UINT32", [2, 2]), TensorSpec("input1", "BOOL", [-1])],
            outputs=[TensorSpec("output0", "FP32", [3, 2]), TensorSpec("output1", "INT64", [1])],
            default_outputs=["output0", "output1"],
        )

    def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], outputs: Sequence[str], parameters: dict[str, Any] | None
    ) -> dict[str, np.ndarray[Any, Any]]:
        for name in ("input0", "input1"):
            if name not in inputs:
                raise InvalidInput(f"missing input {name!r}")
        values = {
            "output0": np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]], dtype=np.float32),
            "output1": np.array([int(inputs["input0"].sum())], dtype=np.int64),
        }
        unknown = [o for o in outputs if o not in values]
        if unknown:
            raise InvalidInput(f"unknown output {unknown[0]!r}")
        return {name: values[name] for name in outputs}


class EchoModel(Model):
    """Returns every input as is, under the same name: round-trips every datatype."""

    platform = "echo"
    last_parameters: dict[str, Any] | None = None

    def load(self, path: Path) -> None:
        pass

    def signature(self) -> Signature:
        return Signature(inputs=[], outputs=[], default_outputs=[])

    def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], outputs: Sequence[str], parameters: dict[str, Any] | None
    ) -> dict[str, np.ndarray[Any, Any]]:
        EchoModel.last_parameters = parameters
        names = list(outputs) or list(inputs)
        missing = [n for n in names if n not in inputs]
        if missing:
            raise InvalidInput(f"unknown output {missing[0]!r}")
        return {name: inputs[name] for name in names}
