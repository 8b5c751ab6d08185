"""scikit-learn estimators and pipelines saved with joblib.

Outputs: ``predict`` (the default, as MLServer names it) and, where the estimator has them,
``predict_proba`` and ``decision_function``, each requested by name in ``outputs``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelops.server.frameworks import InvalidInput, Model, Signature, TensorSpec, default_feature_names
from modelops.server.tensors import datatype_of

INPUT_NAME = "input-0"
_OPTIONAL_OUTPUTS = ("predict_proba", "decision_function")


class SklearnModel(Model):
    """Any object with ``predict``; a single [batch, features] input of any name."""

    platform = "sklearn"

    def __init__(self) -> None:
        self._model: Any = None
        self._n_features: int | None = None
        self._methods: dict[str, Any] = {}
        self._signature: Signature | None = None

    def load(self, path: Path) -> None:
        import joblib

        model = joblib.load(path)
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"{path} holds a {type(model).__name__}, which has no predict()")
        self._model = model
        if getattr(model, "feature_names_in_", None) is not None:
            # Fitted on a DataFrame, served numpy rows: columns are matched by position (the
            # signature lists the names), so scikit-learn's per-call warning about it is noise.
            warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        n = getattr(model, "n_features_in_", None)
        self._n_features = int(n) if n is not None else None
        self._methods = {"predict": model.predict}
        for name in _OPTIONAL_OUTPUTS:
            try:
                method = getattr(model, name)  # a property on some estimators: raises if unavailable
            except AttributeError:
                continue
            if callable(method):
                self._methods[name] = method
        self._signature = self._build_signature()

    def _build_signature(self) -> Signature:
        n = self._n_features if self._n_features is not None else -1
        names = getattr(self._model, "feature_names_in_", None)
        spec = TensorSpec(INPUT_NAME, "FP64", [-1, n])
        features = [str(x) for x in names] if names is not None else default_feature_names(spec)
        classes = getattr(self._model, "classes_", None)
        if classes is not None:
            label_type = datatype_of(np.asarray(classes))
            n_classes = len(classes)
        else:
            label_type, n_classes = "FP64", -1
        outputs = [TensorSpec("predict", label_type, [-1])]
        if "predict_proba" in self._methods:
            outputs.append(TensorSpec("predict_proba", "FP64", [-1, n_classes]))
        if "decision_function" in self._methods:
            outputs.append(TensorSpec("decision_function", "FP64", [-1] if n_classes == 2 else [-1, n_classes]))
        return Signature([spec], outputs, ["predict"], {INPUT_NAME: features})

    def signature(self) -> Signature:
        if self._signature is None:
            raise RuntimeError("model not loaded")
        return self._signature

    def _matrix(self, inputs: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        if len(inputs) == 1:
            (x,) = inputs.values()
            if x.ndim == 1 and self._n_features is not None and x.shape[0] == self._n_features:
                x = x.reshape(1, -1)  # one flat row, as MLServer accepts
            elif x.ndim == 1:
                x = x.reshape(-1, 1)
        else:  # several [batch] or [batch, 1] inputs: one column each, in request order
            columns = []
            for name, col in inputs.items():
                if col.ndim == 2 and col.shape[1] == 1:
                    col = col[:, 0]
                if col.ndim != 1:
                    raise InvalidInput(f"input {name!r}: with several inputs each must be [batch] or [batch, 1]")
                columns.append(col)
            if len({len(c) for c in columns}) != 1:
                raise InvalidInput("inputs have different batch sizes")
            x = np.column_stack(columns)
        if x.ndim != 2:
            raise InvalidInput(f"expected a [batch, features] tensor, got shape {list(x.shape)}")
        if self._n_features is not None and x.shape[1] != self._n_features:
            raise InvalidInput(f"model expects {self._n_features} features, got {x.shape[1]}")
        if x.shape[0] == 0:
            raise InvalidInput("empty batch: the input has no rows")
        return x

    def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], outputs: Sequence[str], parameters: dict[str, Any] | None
    ) -> dict[str, np.ndarray[Any, Any]]:
        x = self._matrix(inputs)
        # Numeric input is checked for NaN/inf here (one vectorised pass), so scikit-learn may skip
        # its own, slower, per-call validation: ~13% of a one-row predict. Other dtypes keep it.
        numeric = x.dtype.kind in "fiub"
        if numeric and x.dtype.kind == "f" and not np.isfinite(x).all():
            raise InvalidInput("model rejected the input: features contain NaN or infinity")
        result: dict[str, np.ndarray[Any, Any]] = {}
        with self._fast_config() if numeric else contextlib.nullcontext():
            for name in outputs:
                method = self._methods.get(name)
                if method is None:
                    raise InvalidInput(f"unknown output {name!r}; this model has {', '.join(self._methods)}")
                try:
                    result[name] = np.asarray(method(x))
                except (ValueError, TypeError) as exc:  # e.g. strings in the features
                    raise InvalidInput(f"model rejected the input: {exc}") from None
        return result

    @staticmethod
    def _fast_config() -> contextlib.AbstractContextManager[Any]:
        import sklearn

        config: contextlib.AbstractContextManager[Any] = sklearn.config_context(
            assume_finite=True, skip_parameter_validation=True
        )
        return config
