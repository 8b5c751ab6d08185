"""`modelops serve`: the built-in Open Inference Protocol v2 model server.

Either name the artifact with flags (`--model-uri --digest --name --version`) or point at a
registered ModelVersion's YAML (`--model-version mv.yaml`, as `registry register --dry-run`
prints it); flags given explicitly win.

Exit codes: 0 stopped gracefully, 2 bad arguments, 3 digest mismatch, 4 artifact unreachable,
5 model failed to load, 6 a worker died, 7 a port could not be bound (busy or not allowed).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from modelops.commands.args import plain, port

DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
EXIT_USAGE = 2
log = logging.getLogger("modelops.serve")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol v2 (REST)",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model-version", type=Path, help="a ModelVersion YAML: fills uri, digest, name, version")
    model.add_argument("--model-uri", help="file path, file://, http(s):// or any fsspec URI")
    model.add_argument("--digest", help="sha256:<hex>; verified before the model is loaded")
    model.add_argument("--name", help="the model name in /v2/models/{name}")
    model.add_argument("--version", dest="model_version_id", metavar="VERSION", help="the model version")
    model.add_argument("--track", choices=("stable", "canary"), default="stable", help="metrics label (default stable)")
    model.add_argument("--deployment", metavar="NAME", help="constant deployment label on all metrics")
    model.add_argument("--framework", help="sklearn, onnx or module:Class (default: from the format or suffix)")
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    net.add_argument(
        "--port", type=port(allow_zero=True), default=8080, help="inference port (default 8080; 0: any free port)"
    )
    net.add_argument("--metrics-port", type=port(), help="serve /metrics here instead of on --port")
    net.add_argument("--workers", type=int, default=1, help="processes sharing the port via SO_REUSEPORT (default 1)")
    net.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024, help="larger bodies get 413 (10 MiB)")
    net.add_argument("--shutdown-delay", type=float, default=3.0, help="seconds not-ready before closing (3)")
    net.add_argument("--shutdown-timeout", type=float, default=25.0, help="seconds to let in-flight finish (25)")
    plog = parser.add_argument_group("prediction log")
    plog.add_argument("--prediction-log", metavar="DIR_OR_URI", help="write sampled predictions here")
    plog.add_argument("--prediction-log-sample-rate", type=float, default=1.0, help="fraction logged (default 1.0)")
    plog.add_argument("--prediction-log-format", choices=("jsonl", "parquet"), default="jsonl")
    plog.add_argument("--prediction-log-rotate-rows", type=int, default=10_000, help="rows per file (10000)")
    plog.add_argument("--prediction-log-rotate-seconds", type=float, default=60.0, help="seconds per file (60)")
    plog.add_argument("--feature-names", help="comma-separated column names for the single input's features")
    parser.add_argument(
        "--prediction-buckets",
        help="comma-separated upper bounds of modelops_prediction_value (default: 0.05 steps on [0,1] plus wide tails)",
    )
    parser.set_defaults(func=_run)


def _from_model_version(path: Path) -> dict[str, Any]:
    import yaml

    from modelops.api.modelversion import ModelVersionSpec

    doc = yaml.safe_load(path.read_text())
    spec = ModelVersionSpec.model_validate((doc or {}).get("spec", doc))
    return {
        "model_uri": spec.artifact.uri,
        "digest": spec.artifact.digest,
        "name": spec.model_name,
        "version": spec.version,
        "artifact_format": spec.artifact.format,
        "framework": spec.framework if spec.framework in ("sklearn", "onnx") else None,
    }


def _floats(text: str, flag: str) -> tuple[float, ...]:
    from modelops.errors import CLIError

    try:
        values = tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise CLIError(f"{flag} must be comma-separated numbers") from None
    if not values:
        raise CLIError(f"{flag} is empty")
    return values


def _run(args: argparse.Namespace) -> int:
    from modelops.errors import CLIError

    try:
        return _serve(args)
    except CLIError as exc:
        exc.exit_code = EXIT_USAGE  # every refusal before serving is a bad argument
        raise


def _serve(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from modelops.errors import CLIError, describe_validation, describe_yaml_error, one_line
    from modelops.server.metrics import PREDICTION_BUCKETS
    from modelops.server.runtime import ServeConfig, serve

    base: dict[str, Any] = {}
    if args.model_version is not None:
        try:
            base = _from_model_version(args.model_version)
        except ValidationError as exc:
            raise CLIError(
                f"ModelVersion {args.model_version} is invalid: {describe_validation(exc, 'spec.')}"
            ) from exc
        except (OSError, ValueError, AttributeError, yaml.YAMLError) as exc:
            if isinstance(exc, yaml.YAMLError):
                reason = describe_yaml_error(exc)
            elif isinstance(exc, OSError) and exc.strerror:
                reason = exc.strerror
            else:
                reason = one_line(exc)
            raise CLIError(f"cannot read ModelVersion {args.model_version}: {reason}") from exc
    uri = args.model_uri or base.get("model_uri")
    digest = args.digest or base.get("digest")
    name = args.name or base.get("name")
    version = args.model_version_id or base.get("version")
    missing = [
        flag
        for flag, v in (("--model-uri", uri), ("--digest", digest), ("--name", name), ("--version", version))
        if not v
    ]
    if missing:
        raise CLIError(f"serve needs {', '.join(missing)} (or --model-version FILE)")
    if not DIGEST.match(str(digest)):
        raise CLIError(f"--digest must look like sha256:<64 hex digits>, got {digest!r}")
    if not 0.0 <= args.prediction_log_sample_rate <= 1.0:
        raise CLIError("--prediction-log-sample-rate must be within [0, 1]")
    if args.deployment is not None and not args.deployment.strip():
        raise CLIError("--deployment must not be empty")
    if args.workers < 1:
        raise CLIError("--workers must be at least 1")
    if args.port == 0 and args.workers > 1:
        raise CLIError("--port 0 (any free port) needs --workers 1: the workers must share one port")
    if args.prediction_log_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CLIError("--prediction-log-format parquet needs pyarrow: pip install 'modelops[drift]'") from None
    config = ServeConfig(
        model_uri=str(uri),
        digest=str(digest),
        name=str(name),
        version=str(version),
        track=args.track,
        deployment=args.deployment,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        framework=args.framework or base.get("framework"),
        artifact_format=base.get("artifact_format"),
        workers=args.workers,
        max_body_bytes=args.max_body_bytes,
        prediction_log=args.prediction_log,
        prediction_log_sample_rate=args.prediction_log_sample_rate,
        prediction_log_format=args.prediction_log_format,
        prediction_log_rotate_rows=args.prediction_log_rotate_rows,
        prediction_log_rotate_seconds=args.prediction_log_rotate_seconds,
        prediction_buckets=(
            _floats(args.prediction_buckets, "--prediction-buckets") if args.prediction_buckets else PREDICTION_BUCKETS
        ),
        shutdown_delay=args.shutdown_delay,
        shutdown_timeout=args.shutdown_timeout,
        feature_names=tuple(x.strip() for x in args.feature_names.split(",")) if args.feature_names else (),
    )
    return serve(config)
