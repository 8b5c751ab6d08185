"""Model frameworks behind one small interface: ``load``, ``predict``, ``metadata``.

A framework is any class implementing ``Model``; it is named either by a key of ``FRAMEWORKS``
or by an import path ``package.module:Class``, so a new one needs no change anywhere else. Each
framework module imports its library lazily, inside ``load``: serving sklearn never imports
onnxruntime.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAMEWORKS: dict[str, str] = {
    "sklearn": "modelops.server.frameworks.sklearn:SklearnModel",
    "onnx": "modelops.server.frameworks.onnx:OnnxModel",
}

# ModelVersion `artifact.format` and file suffixes -> framework key.
FORMAT_TO_FRAMEWORK: dict[str, str] = {"joblib": "sklearn", "pickle": "sklearn", "onnx": "onnx"}
SUFFIX_TO_FRAMEWORK: dict[str, str] = {".joblib": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn", ".onnx": "onnx"}


class InvalidInput(ValueError):
    """The request is well-formed but does not fit this model (names, feature count, dtype)."""


@dataclass(frozen=True)
class TensorSpec:
    """A ``$metadata_tensor``: -1 marks a variable dimension (usually the batch)."""

    name: str
    datatype: str
    shape: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """What a loaded model accepts and returns; ``default_outputs`` answer a request naming none."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    default_outputs: list[str]
    feature_names: dict[str, list[str]] = field(default_factory=dict)


class Model(ABC):
    """One loaded model. ``load`` runs once, off the request path; ``predict`` runs per request."""

    platform: str = "unknown"

    @abstractmethod
    def load(self, path: Path) -> None:
        """Read the (already digest-verified) artifact."""

    @abstractmethod
    def signature(self) -> Signature:
        """Inputs, outputs and feature names, for metadata and the prediction log."""

    @abstractmethod
    def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], outputs: Sequence[str], parameters: dict[str, Any] | None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model; raise ``InvalidInput`` for input that does not fit it."""


def resolve(name: str) -> type[Model]:
    """A framework key or ``module:Class`` -> the Model class."""
    target = FRAMEWORKS.get(name, name)
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise ValueError(f"unknown framework {name!r}: use one of {', '.join(FRAMEWORKS)} or module:Class")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"{target} is not a modelops.server.frameworks.Model")
    return cls


def guess_framework(uri: str, artifact_format: str | None = None) -> str:
    """The framework for an artifact: its ModelVersion format first, then its file suffix."""
    if artifact_format and artifact_format in FORMAT_TO_FRAMEWORK:
        return FORMAT_TO_FRAMEWORK[artifact_format]
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    return SUFFIX_TO_FRAMEWORK.get(suffix, "sklearn")


def default_feature_names(spec: TensorSpec) -> list[str]:
    """Column names for a [batch, F] input without names of its own: ``<input>_<j>``."""
    if len(spec.shape) == 2 and spec.shape[1] > 0:
        return [f"{spec.name}_{j}" for j in range(spec.shape[1])]
    return [spec.name]
