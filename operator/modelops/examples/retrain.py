"""Retrain the churn model on the drifted window and register the result: what a DriftMonitor's Job runs.

    python -m modelops.examples.retrain --labels simulated --out-dir /models

Every input defaults to the environment the operator gives a retraining Job (the names in
:data:`modelops.core.drift_cronjob.RETRAIN_ENV`), so the Job's container needs only the command:

1. Reads the reference (``REFERENCE_URI``: the parent's training data, raw rows) and the window the
   drift check judged (``CURRENT_URI``: a data file, or with ``CURRENT_SOURCE=predictionLog`` the
   model server's prediction log over ``CURRENT_WINDOW`` up to now, starting at the check).
2. Labels: a label column (``--label``, default ``churned``) when the data has one. A prediction
   log has none, and joining real outcomes to logged requests is not done here: ``--labels
   simulated`` applies the known churn rule of the simulated customers of the examples and the
   demo (:func:`simulated_labels`); the output and the version's params say so.
3. Trains a logistic regression (``--algorithm gbm``: gradient boosting) on the reference plus
   75% of the current window, in the parent's feature order (clients send positional tensors),
   and evaluates on the held-out 25% of the current window: ``auc``, ``accuracy``. The parent,
   when its ModelVersion and artifact can be read (digest verified), is scored on the same
   holdout; its scores go in params (``parent_holdout_auc``), not metrics.
4. Writes ``<out-dir>/<model>-v<version>/``: ``model.joblib`` (a plain estimator taking raw
   features, loadable by ``modelops serve``), ``dataset.csv`` (the exact rows, labels and split
   used), ``reference.csv`` (the current window's features: the new version's drift reference)
   and ``drift-report.json`` (``DRIFT_REPORT``). Existing files are never overwritten. With
   ``--artifact-uri-prefix s3://...`` (any fsspec URI) they are uploaded there and registered
   under that URI; otherwise as ``file://`` paths, which a model server reads when it shares the
   directory (the same host in the sandbox; a ReadWriteMany PVC on a cluster).
5. Registers the version by running ``modelops registry register`` with its metrics, params
   and lineage: parent (``MODELOPS_PARENT_VERSION``), dataset URI and sha256, the drift check
   (monitor, check time, report URI), code commit (``MODELOPS_CODE_COMMIT`` / ``GIT_COMMIT``) and
   the Job as training run; the Job's labels let the DriftMonitor link the version in its history.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

CHURN_WEIGHTS = {"tenure_months": -1.2, "monthly_charges": 0.8, "support_calls": 1.5, "contract_length": -0.6}
"""The simulated customers' churn rule, on features standardised by the reference (make_artifacts.py's)."""
LABEL_NOISE = 0.5
MIN_CURRENT_ROWS = 40
OUTPUT_PREFIX = "outputs."


class RetrainError(Exception):
    """A one-line, fixable reason the retraining cannot go on."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modelops.examples.retrain",
        description="Retrain the churn model on the reference plus the drifted window and register it.",
    )
    p.add_argument("--reference", default=_env("REFERENCE_URI"), help="training data of the parent (REFERENCE_URI)")
    p.add_argument("--current", default=_env("CURRENT_URI"), help="the drifted window (CURRENT_URI)")
    p.add_argument(
        "--current-source",
        choices=["uri", "predictionLog"],
        default=_env("CURRENT_SOURCE", "uri"),
        help="a data file, or the model server's prediction log (CURRENT_SOURCE)",
    )
    p.add_argument("--current-format", default=_env("CURRENT_FORMAT", "auto"))
    p.add_argument("--window", default=_env("CURRENT_WINDOW", "24h"), help="prediction-log window (CURRENT_WINDOW)")
    p.add_argument("--check-time", default=_env("MODELOPS_DRIFT_CHECK_TIME"), help="the drift check's time")
    p.add_argument("--model-name", default=_env("MODEL_NAME"), help="model name (MODEL_NAME)")
    p.add_argument("--version", default=_env("MODELOPS_NEXT_VERSION"), help="version to register")
    p.add_argument("--parent", default=_env("MODELOPS_PARENT_VERSION"), help="ModelVersion retrained from")
    p.add_argument("-n", "--namespace", default=_env("MODELOPS_NAMESPACE", "default"))
    p.add_argument("--features", help="comma-separated feature columns (default: the parent's, else shared numerics)")
    p.add_argument("--label", default="churned", help="label column, when the data has one")
    p.add_argument(
        "--labels",
        choices=["column", "simulated"],
        default="column",
        help="take labels from --label, or apply the simulated customers' churn rule (demo data only)",
    )
    p.add_argument("--algorithm", choices=["logreg", "gbm"], default="logreg")
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation of the logistic regression")
    p.add_argument("--holdout", type=float, default=0.25, help="share of the current window held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path(_env("MODELOPS_MODEL_DIR", "/tmp/modelops-models") or "."),
        help="where to write",
    )
    p.add_argument(
        "--artifact-uri-prefix",
        default=_env("MODELOPS_ARTIFACT_URI_PREFIX"),
        help="upload the files under this fsspec URI (s3://bucket/models) and register that URI",
    )
    p.add_argument("--compare-parent", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--register", action=argparse.BooleanOptionalAction, default=True, help="register the version")
    p.add_argument("--kubeconfig", default=None)
    return p


# -- data ---------------------------------------------------------------------------------------


@dataclass
class Table:
    """Named numeric columns of equal length (NaN for missing values)."""

    columns: dict[str, Array] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def _numeric(values: Any) -> Array | None:
    """A numeric column as float64; bool-like categories (true/false, yes/no) as 1/0; else None."""
    from modelops.drift.frame import CategoricalColumn

    if isinstance(values, CategoricalColumn):
        mapping = {"1": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "false": 0.0, "no": 0.0}
        labels = [mapping.get(str(label).strip().lower()) for label in values.categories]
        if any(v is None for v in labels):
            return None
        lookup = np.array([*labels, np.nan], dtype=np.float64)
        codes = np.asarray(values.codes)
        return lookup[np.where(codes < 0, len(labels), codes)]
    arr = np.asarray(values)
    return arr.astype(np.float64) if arr.dtype.kind in "iufb" else None


def _table(frame: dict[str, Any]) -> Table:
    out = Table()
    for name, values in frame.items():
        col = _numeric(values)
        if col is not None:
            out.columns[name] = col
            out.order.append(name)
    return out


def _header(uri: str) -> list[str]:
    """The column order of a CSV (the frame reader's dict order may differ); [] otherwise."""
    from modelops.drift.readers import open_uri

    if not uri.split("?", 1)[0].lower().endswith(".csv"):
        return []
    with open_uri(uri) as fh:
        return next(csv.reader(io.TextIOWrapper(fh, encoding="utf-8")), [])


def read_reference(uri: str) -> Table:
    from modelops.drift.readers import is_profile, load_frame

    if is_profile(uri):
        raise RetrainError(f"the reference {uri} is a profile: training needs raw rows (pass --reference DATA)")
    table = _table(load_frame(uri))
    header = _header(uri)
    table.order = [c for c in header if c in table.columns] + [c for c in table.order if c not in header]
    return table


def read_current(args: argparse.Namespace, now: dt.datetime) -> tuple[Table, str]:
    """The drifted window, and a line saying what it is."""
    from modelops.drift.durations import parse_duration
    from modelops.drift.predlog import LogFilter, read_prediction_log
    from modelops.drift.readers import load_frame

    if args.current_source == "predictionLog":
        window = parse_duration(args.window)
        check = _parse_time(args.check_time) or now
        start = min(check, now) - window
        frame, stats = read_prediction_log(args.current, LogFilter(start=start, end=now), args.current_format)
        what = f"prediction log {args.current}: {stats.rows_matched} rows from {start:%Y-%m-%d %H:%M:%S} to now"
        return _table(frame), what
    table = _table(load_frame(args.current, args.current_format))
    return table, f"{args.current}: {table.rows} rows"


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def choose_features(requested: str | None, parent: list[str] | None, ref: Table, cur: Table, label: str) -> list[str]:
    """Explicit, else the parent's order, else the reference's numeric columns the window also has."""
    if requested:
        features = [f.strip() for f in requested.split(",") if f.strip()]
    elif parent:
        features = parent
    else:
        features = [c for c in ref.order if c in cur.columns and c != label and not c.startswith(OUTPUT_PREFIX)]
    missing = [f for f in features if f not in ref.columns or f not in cur.columns]
    if missing:
        raise RetrainError(f"feature(s) {', '.join(missing)} missing from the reference or the current window")
    if not features:
        raise RetrainError("no numeric feature shared by the reference and the current window")
    return features


def simulated_labels(x: Array, features: list[str], ref_x: Array, rng: np.random.Generator) -> Array:
    """The simulated customers' outcomes: churn when the weighted, reference-standardised features
    plus noise are positive (the rule examples/make_artifacts.py trains v1 and v2 on)."""
    absent = [f for f in CHURN_WEIGHTS if f not in features]
    if absent:
        raise RetrainError(f"--labels simulated needs the churn features; missing: {', '.join(absent)}")
    idx = [features.index(f) for f in CHURN_WEIGHTS]
    mean, std = ref_x[:, idx].mean(axis=0), ref_x[:, idx].std(axis=0)
    z = (x[:, idx] - mean) / np.where(std > 0, std, 1.0)
    logit = z @ np.array(list(CHURN_WEIGHTS.values())) + rng.normal(scale=LABEL_NOISE, size=len(x))
    labels: Array = (logit > 0).astype(np.float64)
    return labels


def _matrix(table: Table, features: list[str]) -> Array:
    return np.column_stack([table.columns[f] for f in features]).astype(np.float64)


# -- training -----------------------------------------------------------------------------------


@dataclass
class Trained:
    model: Any
    metrics: dict[str, float]
    params: dict[str, str]
    seconds: float


def train(
    algorithm: str, x_train: Array, y_train: Array, features: list[str], *, c: float, seed: int
) -> tuple[Any, dict[str, str]]:
    """A fitted binary classifier taking raw features, with ``feature_names_in_`` set."""
    if algorithm == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        gbm = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
        gbm.fit(x_train, y_train.astype(int))
        gbm.feature_names_in_ = np.array(features, dtype=object)
        return gbm, {"max_iter": "100", "learning_rate": "0.1"}
    from sklearn.linear_model import LogisticRegression

    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit((x_train - mean) / std, y_train.astype(int))
    # Fold the standardisation into the coefficients: one plain estimator on raw features.
    coef = model.coef_ / std
    model.intercept_ = model.intercept_ - coef @ mean
    model.coef_ = coef
    model.feature_names_in_ = np.array(features, dtype=object)
    return model, {"C": f"{c:g}"}


def score(model: Any, x: Array, y: Array) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "X does not have valid feature names": positional, as served
        proba = model.predict_proba(x)[:, 1]
    return {
        "auc": round(float(roc_auc_score(y, proba)), 4),
        "accuracy": round(float(accuracy_score(y, (proba >= 0.5).astype(int))), 4),
    }


# -- the parent ---------------------------------------------------------------------------------


def load_parent(args: argparse.Namespace) -> tuple[Any, str]:
    """The parent's estimator (digest verified) and a line about it; (None, why) when unavailable."""
    if not args.parent or not args.compare_parent:
        return None, "parent: not compared"
    try:
        import joblib

        from modelops.artifacts import open_uri
        from modelops.k8s.client import load_api_client
        from modelops.k8s.resources import MODEL_VERSION, CustomObjects

        obj = CustomObjects(load_api_client(args.kubeconfig)).get(MODEL_VERSION, args.namespace, args.parent)
        artifact = obj["spec"]["artifact"]
        with open_uri(artifact["uri"]) as fh:
            data = fh.read()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != artifact["digest"]:
            return None, f"parent {args.parent}: not compared (artifact digest {digest[:19]} != registered)"
        return joblib.load(io.BytesIO(data)), f"parent {args.parent}: {artifact['uri']}"
    except Exception as exc:  # a comparison is a bonus; retraining goes on without it
        return None, f"parent {args.parent}: not compared ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"


# -- output -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _write_new(path: Path, write: Any) -> None:
    if path.exists():
        raise RetrainError(f"{path} exists: a registered version's files are never overwritten")
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.rename(path)


def _write_csv(path: Path, header: list[str], rows: Any) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    _write_new(path, write)


def _publish(path: Path, prefix: str | None, relative: str) -> str:
    """The URI the cluster reads ``path`` at: uploaded under ``prefix`` (fsspec), or file://."""
    if not prefix:
        return path.resolve().as_uri()
    uri = f"{prefix.rstrip('/')}/{relative}"
    if uri.startswith("file://") or "://" not in uri:
        raise RetrainError("--artifact-uri-prefix is for remote storage (s3://, gs://, ...); use --out-dir locally")
    import fsspec

    with fsspec.open(uri, "wb") as out:
        out.write(path.read_bytes())
    return uri


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    for flag, value in (("--reference (REFERENCE_URI)", args.reference), ("--current (CURRENT_URI)", args.current)):
        if not value:
            raise RetrainError(f"{flag} is required")
    if args.register and not (args.model_name and args.version):
        raise RetrainError("registering needs --model-name (MODEL_NAME) and --version (MODELOPS_NEXT_VERSION)")
    name, version = args.model_name or "model", args.version or "dev"
    from modelops.core.naming import model_version_name
    from modelops.drift.errors import DriftDataError

    try:
        ref = read_reference(args.reference)
        cur, cur_line = read_current(args, now)
    except DriftDataError as exc:
        raise RetrainError(f"{exc.reason}: {exc.message}") from exc
    print(f"reference {args.reference}: {ref.rows} rows")
    print(f"current   {cur_line}")
    parent, parent_line = load_parent(args)
    parent_features = getattr(parent, "feature_names_in_", None)
    features = choose_features(
        args.features,
        [str(f) for f in parent_features] if parent_features is not None else None,
        ref,
        cur,
        args.label,
    )
    ref_x, cur_x = _matrix(ref, features), _matrix(cur, features)
    rng = np.random.default_rng(args.seed)
    if args.labels == "simulated":
        ref_y = simulated_labels(ref_x, features, ref_x, rng)
        cur_y = simulated_labels(cur_x, features, ref_x, rng)
        label_line = "labels: SIMULATED (the example customers' churn rule; real outcomes are not joined here)"
    else:
        if args.label not in ref.columns or args.label not in cur.columns:
            raise RetrainError(
                f"no label column {args.label!r} in the reference and the current window: join the outcomes "
                "to the data, or pass --labels simulated for the simulated customers of the examples"
            )
        ref_y, cur_y = ref.columns[args.label], cur.columns[args.label]
        label_line = f"labels: column {args.label}"
    print(label_line)
    keep_ref = ~(np.isnan(ref_x).any(axis=1) | np.isnan(ref_y))
    keep_cur = ~(np.isnan(cur_x).any(axis=1) | np.isnan(cur_y))
    ref_x, ref_y, cur_x, cur_y = ref_x[keep_ref], ref_y[keep_ref], cur_x[keep_cur], cur_y[keep_cur]
    if len(cur_y) < MIN_CURRENT_ROWS:
        raise RetrainError(f"only {len(cur_y)} complete rows in the current window; need {MIN_CURRENT_ROWS}")
    from sklearn.model_selection import train_test_split

    try:
        train_idx, hold_idx = train_test_split(
            np.arange(len(cur_y)), test_size=args.holdout, random_state=args.seed, stratify=cur_y
        )
    except ValueError as exc:
        raise RetrainError(f"cannot hold out a stratified {args.holdout:.0%} of the current window: {exc}") from exc
    x_train = np.vstack([ref_x, cur_x[train_idx]])
    y_train = np.concatenate([ref_y, cur_y[train_idx]])
    x_hold, y_hold = cur_x[hold_idx], cur_y[hold_idx]

    fit_started = time.monotonic()
    model, params = train(args.algorithm, x_train, y_train, features, c=args.c, seed=args.seed)
    fit_seconds = time.monotonic() - fit_started
    metrics = score(model, x_hold, y_hold)
    params.update(
        {
            "algorithm": args.algorithm,
            "features": ",".join(features),
            "labels": "simulated" if args.labels == "simulated" else f"column:{args.label}",
            "train_rows": str(len(y_train)),
            "holdout_rows": str(len(y_hold)),
            "holdout": "current-window",
            "seed": str(args.seed),
        }
    )
    print(f"features: {', '.join(features)}")
    print(
        f"trained {args.algorithm} on {len(y_train)} rows ({len(ref_y)} reference + {len(train_idx)} current) "
        f"in {fit_seconds:.2f}s"
    )
    print(f"holdout ({len(y_hold)} rows of the current window): {_fmt(metrics)}")
    print(parent_line)
    if parent is not None:
        try:
            theirs = score(parent, x_hold, y_hold)
        except Exception as exc:  # a parent on other features cannot be scored here
            print(f"  parent not scored: {type(exc).__name__}: {exc}")
        else:
            params.update({f"parent_holdout_{k}": f"{v:.4f}" for k, v in theirs.items()})
            print(f"  parent on the same holdout: {_fmt(theirs)}")

    obj_name = model_version_name(name, version)
    out = args.out_dir / obj_name
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / "model.joblib"
    import joblib

    _write_new(artifact, lambda tmp: joblib.dump(model, tmp))
    split = np.full(len(cur_y), "train", dtype=object)
    split[hold_idx] = "holdout"
    dataset_rows = [
        *([*map(float, x), int(y), "reference", "train"] for x, y in zip(ref_x, ref_y, strict=True)),
        *([*map(float, x), int(y), "current", s] for x, y, s in zip(cur_x, cur_y, split, strict=True)),
    ]
    dataset = out / "dataset.csv"
    _write_csv(dataset, [*features, "label", "source", "split"], dataset_rows)
    reference = out / "reference.csv"
    _write_csv(reference, features, ([*map(float, x)] for x in cur_x))
    report_uri: str | None = None
    report_text = os.environ.get("DRIFT_REPORT")
    if report_text:
        report = out / "drift-report.json"
        _write_new(report, lambda tmp: tmp.write_text(json.dumps(json.loads(report_text), indent=1) + "\n"))
        report_uri = _publish(report, args.artifact_uri_prefix, f"{obj_name}/drift-report.json")
    artifact_uri = _publish(artifact, args.artifact_uri_prefix, f"{obj_name}/model.joblib")
    dataset_uri = _publish(dataset, args.artifact_uri_prefix, f"{obj_name}/dataset.csv")
    reference_uri = _publish(reference, args.artifact_uri_prefix, f"{obj_name}/reference.csv")
    print(
        f"wrote {artifact_uri} ({_sha256(artifact)[:19]}), dataset.csv, reference.csv"
        + (", drift-report.json" if report_uri else "")
    )

    argv = [
        "registry",
        "register",
        str(artifact),
        "--name",
        name,
        "--version",
        version,
        "--uri",
        artifact_uri,
        "--format",
        "joblib",
        "--framework",
        "sklearn",
        "--metrics",
        *(f"{k}={v}" for k, v in metrics.items()),
        "--params",
        *(f"{k}={v}" for k, v in params.items()),
        "--dataset-uri",
        dataset_uri,
        "--dataset-digest",
        _sha256(dataset),
        "--reference-profile",
        reference_uri,
        "-n",
        args.namespace,
    ]
    if args.parent:
        argv += ["--parent", args.parent]
    if report_uri:
        argv += ["--drift-report-uri", report_uri]
    if args.kubeconfig:
        argv += ["--kubeconfig", args.kubeconfig]
    print("$ modelops " + shlex.join(argv))
    if not args.register:
        print(f"not registered (--no-register); {time.monotonic() - started:.1f}s")
        return 0
    from modelops.cli import main as modelops

    code = modelops(argv)
    print(f"done in {time.monotonic() - started:.1f}s")
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RetrainError as exc:
        print(f"retrain: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
