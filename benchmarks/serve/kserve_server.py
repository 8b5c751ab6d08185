"""KServe's Python model server with the benchmark's scikit-learn model (run in its own venv).

A minimal ``kserve.Model``, as KServe's docs show for custom models: load with joblib, predict
on the v2 request's first input. Everything else is KServe's defaults.

    python kserve_server.py --model_dir DIR --model_name lr --http_port P [--workers N]
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

import joblib
import kserve
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class SKLearnModel(Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.model: Any = None
        self.load()

    def load(self) -> bool:
        self.model = joblib.load(os.path.join(self.model_dir, "model.joblib"))
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        y = self.model.predict(x)
        output = InferOutput(name="output-0", shape=list(y.shape), datatype="INT64", data=y.tolist())
        return InferResponse(model_name=self.name, infer_outputs=[output], response_id=payload.id or str(uuid.uuid4()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    ModelServer().start([SKLearnModel(args.model_name, args.model_dir)])
