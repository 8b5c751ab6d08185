"""`modelops performance check`: model performance from delayed labels joined to the prediction log.

Exit codes (a CI gate, like ``drift check``):
  0  healthy: every metric within its thresholds (or none set)
  1  degraded: a metric is past a threshold
  2  cannot judge: bad data or usage (unreadable files, missing columns, no predictions in the
     window, a bad config) or too few labels (Inconclusive: coverage below --min-coverage,
     fewer than --min-labels, a judged metric undefined)

In a cluster, a DriftMonitor with ``spec.performance`` runs the same check from its CronJob
(``modelops drift check --monitor NS/NAME`` checks drift and performance together).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Imports of numpy, pyarrow, pydantic and the drift package happen inside the functions: `modelops
# --help` imports every command module and must stay fast.

EXIT_HEALTHY = 0
EXIT_DEGRADED = 1
EXIT_CANNOT_JUDGE = 2
FORMATS = ("auto", "parquet", "csv", "jsonl")
_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9]+)\s*(>=|<=)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "performance",
        help="model performance from delayed labels (accuracy, AUC, RMSE...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    perf_sub = parser.add_subparsers(dest="performance_command", metavar="SUBCOMMAND")

    def _usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_CANNOT_JUDGE

    parser.set_defaults(func=_usage)
    check = perf_sub.add_parser(
        "check",
        help="join labels to predictions and judge the metrics (exit 0 healthy, 1 degraded, 2 cannot judge)",
        description="Join labels to predictions and judge the metrics. Exit 0: healthy; 1: degraded; "
        "2: bad data, usage, or too few labels (inconclusive).",
    )
    check.add_argument("--predictions", required=True, help="prediction log (file, directory or glob) or a table")
    check.add_argument("--labels", required=True, help="labels: Parquet, CSV or JSONL file, directory or glob")
    check.add_argument(
        "--config", type=Path, default=None, help="YAML/JSON: a DriftMonitor, its spec, or its spec.performance"
    )
    check.add_argument("--output", choices=("json", "table", "html"), default="table", help="output format")
    check.add_argument("-o", "--out", type=Path, default=None, help="write the output here instead of stdout")
    check.add_argument("--task", choices=("binary", "multiclass", "regression"), default=None)
    check.add_argument("--join-key", default=None, help="prediction-side key (default request_id)")
    check.add_argument("--id-column", default=None, help="labels' id column (default request_id)")
    check.add_argument("--label-column", default=None, help="labels' label column (default label)")
    check.add_argument("--event-time-column", default=None, help="labels' event-time column (latest label wins)")
    check.add_argument("--predictions-format", default="auto", choices=FORMATS)
    check.add_argument("--labels-format", default=None, choices=FORMATS)
    check.add_argument("--classes", default=None, help="comma-separated classes in probability-column order")
    check.add_argument("--positive-class", default=None)
    check.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC>=VALUE",
        help="absolute bound, e.g. 'auc>=0.8' or 'logLoss<=0.5' (repeatable)",
    )
    check.add_argument(
        "--max-relative-drop",
        action="append",
        default=[],
        metavar="METRIC=FRACTION",
        help="e.g. auc=0.05: degraded when 5%% worse than the registered value (repeatable)",
    )
    check.add_argument(
        "--registered",
        action="append",
        default=[],
        metavar="NAME=VALUE|FILE",
        help="registered offline metrics: name=value, or a ModelVersion YAML (its spec.metrics)",
    )
    check.add_argument("--window", default=None, help="judge the predictions of this window only (e.g. 24h)")
    check.add_argument("--label-delay", default=None, help="the window ends this long before --now")
    check.add_argument("--now", default=None, help="check time (RFC 3339; default now): later labels are ignored")
    check.add_argument("--chunk", default=None, help="also report metrics per chunk of this duration (e.g. 6h)")
    check.add_argument("--min-coverage", type=float, default=None, help="default 0.5")
    check.add_argument("--min-labels", type=int, default=None, help="default 100")
    check.add_argument("--estimate", action="store_true", help="add the label-free CBPE estimate")
    # Its output written and its files closed, the process ends without the interpreter's
    # teardown (modelops.cli.end_process): 70 ms of a 1M-row check.
    check.set_defaults(func=run_check_command, skip_teardown=True)


def _fail(message: str) -> int:
    print(f"modelops: error: {message}", file=sys.stderr)
    return EXIT_CANNOT_JUDGE


def _config_document(path: Path | None) -> dict[str, Any]:
    """``spec.performance`` of a DriftMonitor file, of a spec, or the performance settings themselves."""
    if path is None:
        return {}
    import yaml

    from modelops.drift.errors import DriftDataError

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DriftDataError("InvalidConfig", f"cannot read config {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise DriftDataError("InvalidConfig", f"config {path} must be a mapping")
    if isinstance(doc.get("spec"), dict):
        doc = doc["spec"]
    if isinstance(doc.get("performance"), dict):
        doc = doc["performance"]
    return dict(doc)


def _registered(values: list[str]) -> dict[str, float]:
    from modelops.drift.errors import DriftDataError

    out: dict[str, float] = {}
    for value in values:
        if "=" in value and not Path(value).exists():
            name, _, number = value.partition("=")
            try:
                out[name.strip()] = float(number)
            except ValueError:
                raise DriftDataError("InvalidConfig", f"--registered {value!r}: not NAME=NUMBER") from None
            continue
        import yaml  # only for a file: yaml costs 25 ms of start-up

        try:
            doc = yaml.safe_load(Path(value).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise DriftDataError("InvalidConfig", f"cannot read --registered {value}: {exc}") from exc
        metrics = ((doc or {}).get("spec") or {}).get("metrics") if isinstance(doc, dict) else None
        if metrics is None and isinstance(doc, dict):
            metrics = doc.get("metrics", doc)
        if not isinstance(metrics, dict):
            raise DriftDataError("InvalidConfig", f"--registered {value}: no metrics mapping")
        try:
            out.update({str(k): float(v) for k, v in metrics.items()})
        except (TypeError, ValueError):
            raise DriftDataError("InvalidConfig", f"--registered {value}: metrics must be numbers") from None
    return out


def settings_document(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """The ``spec.performance`` document the config file and flags describe (flags win), not yet
    validated, and whether a window applies (``--window``/``--label-delay``, or
    ``window``/``labelDelay`` in the config)."""
    from modelops.drift.errors import DriftDataError

    doc = _config_document(args.config)
    labels = dict(doc.get("labels") or {})
    labels["uri"] = args.labels
    for flag, key in (
        ("id_column", "idColumn"),
        ("label_column", "labelColumn"),
        ("event_time_column", "eventTimeColumn"),
        ("labels_format", "format"),
    ):
        if getattr(args, flag) is not None:
            labels[key] = getattr(args, flag)
    doc["labels"] = labels
    for flag, key in (
        ("task", "task"),
        ("join_key", "joinKey"),
        ("positive_class", "positiveClass"),
        ("chunk", "chunk"),
        ("min_coverage", "minCoverage"),
        ("min_labels", "minLabels"),
        ("window", "window"),
        ("label_delay", "labelDelay"),
    ):
        if getattr(args, flag) is not None:
            doc[key] = getattr(args, flag)
    if args.classes is not None:
        doc["classes"] = [c.strip() for c in args.classes.split(",") if c.strip()]
    if args.estimate:
        doc["estimate"] = True
    if args.threshold or args.max_relative_drop:
        metrics = {m["name"]: dict(m) for m in doc.get("metrics") or [] if isinstance(m, dict) and "name" in m}
        for text in args.threshold:
            match = _THRESHOLD.match(text)
            if match is None:
                raise DriftDataError("InvalidConfig", f"--threshold {text!r}: expected METRIC>=VALUE or METRIC<=VALUE")
            name, op, value = match.groups()
            metrics.setdefault(name, {"name": name})["min" if op == ">=" else "max"] = float(value)
        for text in args.max_relative_drop:
            name, sep, value = text.partition("=")
            try:
                drop = float(value) if sep else None
            except ValueError:
                drop = None
            if drop is None:
                raise DriftDataError("InvalidConfig", f"--max-relative-drop {text!r}: expected METRIC=FRACTION")
            metrics.setdefault(name.strip(), {"name": name.strip()})["maxRelativeDrop"] = drop
        doc["metrics"] = list(metrics.values())
    windowed = "window" in doc or "labelDelay" in doc
    if "task" not in doc:
        raise DriftDataError(
            "InvalidConfig", "--task (or task in --config) is required: binary, multiclass or regression"
        )
    return doc, windowed


def validate_settings(doc: dict[str, Any]) -> Any:
    """The PerformanceSettings of a document (pydantic); InvalidConfig naming the first error."""
    from pydantic import ValidationError

    from modelops.api.performance import PerformanceSettings
    from modelops.drift.errors import DriftDataError

    try:
        return PerformanceSettings.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DriftDataError("InvalidConfig", f"performance.{where}: {first['msg']}") from exc


def settings_from_args(args: argparse.Namespace) -> tuple[Any, bool]:
    """The validated PerformanceSettings of the config file and flags, and whether a window applies."""
    doc, windowed = settings_document(args)
    return validate_settings(doc), windowed


def prefetch_plan(doc: dict[str, Any], args: argparse.Namespace, windowed: bool) -> Any:
    """The sources the settings will read, from the document before pydantic has seen it.

    The defaults are PerformanceSettings' (a test keeps them equal). None when a value is not
    plain text: the check then reads after validation, and a wrong guess only costs a re-read
    (the check compares this plan with the one of the validated settings).
    """
    from modelops.drift.performance_io import ReadPlan

    labels = doc.get("labels")
    if not isinstance(labels, dict):
        return None
    fields = {
        "join_key": doc.get("joinKey", "request_id"),
        "prediction_output": doc.get("predictionOutput", "predict"),
        "probability_output": doc.get("probabilityOutput", "predict_proba"),
        "labels_format": labels.get("format", "auto"),
        "id_column": labels.get("idColumn", "request_id"),
        "label_column": labels.get("labelColumn", "label"),
        "task": doc.get("task"),
        "labels_uri": labels.get("uri"),
    }
    event_time = labels.get("eventTimeColumn")
    if not all(isinstance(v, str) and v for v in fields.values()) or not isinstance(event_time, str | None):
        return None
    return ReadPlan(
        predictions_uri=args.predictions,
        predictions_format=args.predictions_format,
        join_key=fields["join_key"],
        outputs=(fields["prediction_output"],),
        probability_prefix=None if fields["task"] == "regression" else fields["probability_output"] + "_",
        need_time=windowed or doc.get("chunk") is not None,
        labels_uri=fields["labels_uri"],
        labels_format=fields["labels_format"],
        id_column=fields["id_column"],
        label_column=fields["label_column"],
        event_time_column=event_time,
    )


def _now(text: str | None) -> datetime:
    from modelops.drift.errors import DriftDataError

    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise DriftDataError("InvalidConfig", f"--now {text!r} is not an RFC 3339 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def compute(args: argparse.Namespace) -> Any:
    """Start reading the sources first (Arrow, GIL-free threads), then import and validate
    (pydantic, the check's modules: 0.3 s of start-up that now overlaps the reading)."""
    from modelops.drift.performance_io import Prefetch

    doc, windowed = settings_document(args)
    plan = prefetch_plan(doc, args, windowed)
    prefetched = Prefetch(plan) if plan is not None else None
    settings = validate_settings(doc)
    from modelops.drift.performance import check_performance, check_window

    now = _now(args.now)
    start = end = None
    if windowed:
        start, end = check_window(settings, now)
    return check_performance(
        settings,
        args.predictions,
        args.predictions_format,
        now=now,
        start=start,
        end=end,
        registered=_registered(args.registered),
        prefetched=prefetched,
    )


def format_table(result: Any) -> str:
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    lines = [
        f"{result.verdict.upper()} ({result.reason}): {result.message}",
        "",
    ]
    header = ("metric", "value", "min", "max", "registered", "status")
    rows = [header]
    for m in result.metrics:
        status = {True: "ok", False: "DEGRADED", None: "-" if m.value is not None else f"undefined ({m.note})"}[
            m.passed
        ]
        rows.append((m.name, num(m.value), num(m.min), num(m.max), num(m.registered), status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    quality = {k: v for k, v in result.quality.to_wire().items() if v not in (0, None, [])}
    if quality:
        lines += [
            "",
            "data: " + ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in quality.items()),
        ]
    if result.estimate is not None:
        e = result.estimate
        lines += [
            "",
            f"estimate (CBPE, {e.rows:,} predictions): accuracy {num(e.accuracy)} (realised {num(e.realised_accuracy)}),"
            f" auc {num(e.auc)} (realised {num(e.realised_auc)})",
        ]
    for w in result.windows or []:
        shown = ", ".join(f"{m.name} {num(m.value)}" for m in w.metrics)
        lines.append(f"  {w.start.isoformat()}  {w.labelled:>8,}/{w.predictions:<8,} {shown}")
    return "\n".join(lines) + "\n"


def keep_freed_memory() -> None:
    """Let the C library keep the memory a check frees, for the next array, instead of unmapping it.

    A 1M-row check allocates and frees arrays of 8-100 MB one after another. By default glibc
    maps each large block anew and unmaps it on free, so every array pays first-touch page
    faults again (on a VM, a quarter of the check's CPU time was the kernel zeroing pages).
    A short-lived command can keep them: no mmap for blocks under 1 GiB, no trimming of the
    heap's top, and one arena for every thread (a worker thread's arena is capped at 64 MiB, so
    its large arrays would be mapped anew each time). Arrow then allocates from the same heap
    (its system pool instead of mimalloc), so what the readers free (the CSV's text, Parquet's
    decompressed pages) is reused by the join's arrays: 1M x 1M, 0.3-0.4 s less CPU. A no-op
    where the C library has no ``mallopt`` (musl, macOS).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_arena_max, 1)
    mallopt(m_mmap_threshold, 1 << 30)
    mallopt(m_trim_threshold, 1 << 30)
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def run_check_command(args: argparse.Namespace) -> int:
    # The imports below and the check allocate many objects but no cycles worth collecting:
    # without the cyclic GC's passes a 1M-row check spends ~5% less CPU.
    collecting = gc.isenabled()
    gc.disable()
    if "numpy" not in sys.modules:
        # The check does no linear algebra: numpy's OpenBLAS need not start a thread per core
        # at import (~50 ms of CPU on 2 cores).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # numpy asks for transparent huge pages on every array over 4 MB. On the VMs measured
        # (free pages handed back to the host), faulting a huge page in cost 2-3x more than the
        # 4 KiB pages it replaces, and a fault could stall on compaction: 1M x 1M, 20 interleaved
        # runs, whole process 1.67 s against 1.77 s, CPU 2.37 s against 2.52 s. numpy's own
        # variable; NUMPY_MADVISE_HUGEPAGE=1 restores its default.
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    keep_freed_memory()
    try:
        return _run_check(args)
    finally:
        # What the imports built lives until exit: moved out of the collector's sight, so the
        # collection of the interpreter's shutdown does not walk it again (~0.07 s at exit).
        gc.freeze()
        if collecting:
            gc.enable()


def _run_check(args: argparse.Namespace) -> int:
    from modelops.drift.errors import DriftDataError

    try:
        result = compute(args)
    except DriftDataError as exc:
        return _fail(str(exc))
    if args.output == "json":
        body = result.to_wire()
        text = json.dumps(body, indent=2) + "\n"
    elif args.output == "html":
        from modelops.drift.performance_html import render_performance_html

        text = render_performance_html(result, sources=(f"predictions: {args.predictions}", f"labels: {args.labels}"))
    else:
        text = format_table(result)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return {"Healthy": EXIT_HEALTHY, "Degraded": EXIT_DEGRADED}.get(result.verdict, EXIT_CANNOT_JUDGE)
