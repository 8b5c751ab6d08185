"""`modelops drift`: local drift checks, reference profiles and HTML reports.

Exit codes of `check` (so a CI pipeline can gate on it):
  0  no dataset drift
  1  dataset drift (the share of drifted features reached driftShare)
  2  bad data or usage (missing columns, empty data, unreadable or mistyped files, bad config)
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.commands.args import plain
from modelops.drift.defaults import DEFAULT_BINS, DEFAULT_KS_SAMPLE
from modelops.drift.durations import parse_duration
from modelops.drift.errors import DriftDataError
from modelops.errors import CLIError, describe_validation, describe_yaml_error, one_line

if TYPE_CHECKING:
    from modelops.api.driftmonitor import ColumnMapping, DriftSettings
    from modelops.drift.engine import DriftReport
    from modelops.drift.frame import Frame

# The parser is built from the standard library only (`drift --help` must not import numpy,
# pydantic or pyarrow); a command imports what it needs when it runs (a check: numpy, pyarrow and
# the API models, never scipy.stats).

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_BAD_DATA = 2
TRUSTED_ROWS = 100
"""Fewer current rows than this get a warning: the tests cannot tell drift from noise on a handful
of rows (the DriftMonitor's `current.minRows` defaults to the same number)."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "drift",
        help="drift checks, reference profiles and reports",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drift_sub = parser.add_subparsers(dest="drift_command", metavar="SUBCOMMAND")

    def _usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_BAD_DATA

    parser.set_defaults(func=_usage)

    check = drift_sub.add_parser(
        "check",
        help="compare current data with a reference (exit 0 no drift, 1 drift, 2 bad data)",
        description="Compare current data with a reference. Exit 0: no dataset drift; 1: dataset drift; "
        "2: bad data or usage.",
    )
    _data_args(check)
    check.add_argument("--output", choices=("json", "table", "html"), default="table", help="output format")
    check.add_argument(
        "--monitor",
        metavar="NAMESPACE/NAME",
        help="in-cluster mode (what the CronJob runs): check this DriftMonitor and write its status",
    )
    check.add_argument("--kubeconfig", default=None, help="with --monitor: kubeconfig (default: in-cluster)")
    check.add_argument("-o", "--out", type=Path, default=None, help="write the output here instead of stdout")
    check.set_defaults(func=run_check_command)

    report = drift_sub.add_parser("report", help="write a self-contained HTML drift report")
    _data_args(report)
    report.add_argument("-o", "--out", type=Path, required=True, help="the HTML file to write")
    report.set_defaults(func=run_report_command)

    profile = drift_sub.add_parser("profile", help="build a compact reference profile (.npz) from data")
    profile.add_argument("data", help="Parquet, CSV or JSONL file or fsspec URI")
    profile.add_argument("-o", "--out", type=Path, required=True, help="profile to write (.npz)")
    profile.add_argument("--config", type=Path, default=None, help="YAML/JSON with columnMapping (or a DriftMonitor)")
    profile.add_argument("--format", default="auto", choices=("auto", "parquet", "csv", "jsonl"))
    profile.add_argument("--ks-sample", type=int, default=DEFAULT_KS_SAMPLE, help="distinct values kept per column")
    profile.add_argument("--bins", type=int, default=DEFAULT_BINS, help="reference-quantile bins for PSI/chi2/JS")
    profile.set_defaults(func=run_profile_command)


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", help="reference data or profile (.npz): path or fsspec URI")
    parser.add_argument("--current", help="current data: path or fsspec URI (file, directory or glob for logs)")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML/JSON: drift settings and columnMapping, or a DriftMonitor"
    )
    parser.add_argument("--reference-format", default="auto", choices=("auto", "parquet", "csv", "jsonl"))
    parser.add_argument("--current-format", default="auto", choices=("auto", "parquet", "csv", "jsonl"))
    parser.add_argument("--prediction-log", action="store_true", help="--current is the model server's prediction log")
    parser.add_argument("--window", default="24h", help="prediction-log window ending now (default 24h)")
    parser.add_argument("--model", default=None, help="prediction-log rows of this model only")
    parser.add_argument("--model-version", default=None, help="prediction-log rows of this version only")
    parser.add_argument("--track", default=None, help="prediction-log rows of this track only (stable/canary)")
    parser.add_argument(
        "--min-rows",
        type=int,
        default=1,
        help=f"fewer current rows is bad data (exit 2); below {TRUSTED_ROWS} a warning says the sample is small",
    )


def load_config(path: Path | None) -> tuple[DriftSettings | None, ColumnMapping | None]:
    """Settings from a file holding a DriftMonitor, its spec, or ``{drift:, columnMapping:}``.

    Without a file: (None, None), the engine's defaults (``DriftSettings()``), and no API model
    (nor pydantic, nor YAML) is imported.
    """
    if path is None:
        return None, None
    import yaml
    from pydantic import ValidationError

    from modelops.api.driftmonitor import ColumnMapping, DriftSettings

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DriftDataError("InvalidConfig", f"config {path} is not valid YAML: {describe_yaml_error(exc)}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DriftDataError("InvalidConfig", f"cannot read config {path}: {reason}") from exc
    if not isinstance(doc, dict):
        raise DriftDataError("InvalidConfig", f"config {path} must be a mapping")
    if "spec" in doc:
        doc = doc["spec"] or {}
    try:
        settings = DriftSettings.model_validate(doc.get("drift") or {})
    except ValidationError as exc:
        raise DriftDataError("InvalidConfig", f"config {path}: {describe_validation(exc, 'drift.')}") from exc
    try:
        mapping_doc = doc.get("columnMapping")
        mapping = ColumnMapping.model_validate(mapping_doc) if mapping_doc else None
    except ValidationError as exc:
        raise DriftDataError("InvalidConfig", f"config {path}: {describe_validation(exc, 'columnMapping.')}") from exc
    return settings, mapping


def compute_from_args(args: argparse.Namespace, *, histograms: bool, now: datetime | None = None) -> DriftReport:
    """The check the arguments describe; raises DriftDataError on bad data or usage."""
    from modelops.drift.engine import compute_drift
    from modelops.drift.predlog import LogFilter, read_prediction_log
    from modelops.drift.readers import load_frame, load_reference

    if not args.reference or not args.current:
        raise DriftDataError("InvalidConfig", "--reference and --current are required")
    now = now or datetime.now(UTC)
    settings, mapping = load_config(args.config)
    # The reference (a profile's decompression, or raw data) loads in a thread while this one
    # reads the current data: both spend their time outside the GIL.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_reference, args.reference, args.reference_format, mapping, cache=None)
        current: Frame
        try:
            if args.prediction_log:
                try:
                    window = parse_duration(args.window)
                except ValueError as exc:
                    raise DriftDataError("InvalidConfig", str(exc)) from exc
                flt = LogFilter(now - window, now, args.model, args.model_version, args.track)
                current, _stats = read_prediction_log(args.current, flt, args.current_format)
            else:
                current = load_frame(args.current, args.current_format, mapping)
        except BaseException:
            pending.result()  # a bad reference is reported first, as when it was read first
            raise
        reference = pending.result()
    return compute_drift(reference, current, settings, mapping, now, min_rows=args.min_rows, histograms=histograms)


def format_table(report: DriftReport) -> str:
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    lines = [
        f"{verdict}: {report.drifted_features}/{len(report.features)} features drifted "
        f"(share {report.drift_share:.2f}, threshold {report.drift_share_threshold:.2f}, correction {report.correction})",
        "",
    ]
    header = ("feature", "kind", "test", "statistic", "p-value", "threshold", "drift", "n_ref", "n_cur", "nan_cur")
    rows = [header]
    for f in report.sorted_features():
        rows.append(
            (
                f.name,
                f.kind[:3],
                f.test,
                _num(f.statistic),
                _num(f.p_value),
                _num(f.threshold),
                "DRIFT" if f.drifted else "ok",
                str(f.n_reference),
                str(f.n_current),
                str(f.nan_current),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    unseen = [f for f in report.features if f.unseen_categories]
    for f in unseen:
        lines.append(f"note: {f.name}: categories unseen in the reference: {', '.join(f.unseen_categories)}")
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        _write(out, text)


def _write(out: Path, data: str | None = None, save: Any = None) -> None:
    try:
        if save is not None:
            save(out)
        else:
            out.write_text(data or "")
    except OSError as exc:
        raise CLIError(f"cannot write {out}: {exc.strerror or exc}", EXIT_BAD_DATA) from exc


def check_output(out: Path | None) -> None:
    """Refuse an output path that cannot be written before the (possibly long) computation."""
    if out is None:
        return
    if out.is_dir():
        raise CLIError(f"-o {out} is a directory; name a file", EXIT_BAD_DATA)
    if not out.parent.is_dir():
        raise CLIError(f"-o {out}: directory {out.parent} does not exist", EXIT_BAD_DATA)


def warn_if_small(report: DriftReport) -> None:
    rows = max((f.n_current for f in report.features), default=0)
    if rows < TRUSTED_ROWS:
        print(
            f"modelops: warning: only {rows} current row(s): too few to trust the verdict "
            f"(use {TRUSTED_ROWS} or more; --min-rows N makes fewer rows bad data)",
            file=sys.stderr,
        )


def _fail(exc: DriftDataError) -> int:
    print(f"modelops: error: {one_line(exc)}", file=sys.stderr)
    return EXIT_BAD_DATA


def run_check_command(args: argparse.Namespace) -> int:
    if getattr(args, "monitor", None):
        return run_monitor_command(args)
    try:
        check_output(args.out)
        report = compute_from_args(args, histograms=args.output == "html")
        warn_if_small(report)
        if args.output == "json":
            _emit(json.dumps(report.to_dict(), indent=2) + "\n", args.out)
        elif args.output == "html":
            from modelops.drift.html import render_html

            _emit(render_html(report, sources=(f"reference: {args.reference}", f"current: {args.current}")), args.out)
        else:
            _emit(format_table(report), args.out)
    except DriftDataError as exc:
        return _fail(exc)
    return EXIT_DRIFT if report.dataset_drift else EXIT_OK


def run_monitor_command(args: argparse.Namespace) -> int:
    """Check one DriftMonitor in the cluster; non-zero only on infrastructure failure."""
    from modelops.k8s.client import KubeConnectionError, load_api_client
    from modelops.k8s.drift_check import run_monitor_check
    from modelops.k8s.resources import Conflict, CustomObjects, NotFound, Rejected

    namespace, sep, name = str(args.monitor).partition("/")
    if not sep or not namespace or not name:
        raise CLIError(f"--monitor must be NAMESPACE/NAME, got {args.monitor!r}")
    try:
        return run_monitor_check(CustomObjects(load_api_client(args.kubeconfig)), namespace, name)
    except (KubeConnectionError, NotFound, Conflict, Rejected) as exc:
        raise CLIError(f"drift check of {args.monitor}: {exc}") from exc


def run_report_command(args: argparse.Namespace) -> int:
    """Writes the report; exits 0 whatever the verdict (use ``check`` to gate), 2 on bad data."""
    from modelops.drift.html import render_html

    try:
        check_output(args.out)
        report = compute_from_args(args, histograms=True)
        warn_if_small(report)
        _write(args.out, render_html(report, sources=(f"reference: {args.reference}", f"current: {args.current}")))
    except DriftDataError as exc:
        return _fail(exc)
    print(
        f"{args.out}: {'dataset drift' if report.dataset_drift else 'no dataset drift'} "
        f"({report.drifted_features}/{len(report.features)} features)"
    )
    return EXIT_OK


def run_profile_command(args: argparse.Namespace) -> int:
    from modelops.drift.readers import profile_from_uri

    try:
        check_output(args.out)
        _settings, mapping = load_config(args.config)
        profile = profile_from_uri(args.data, args.format, mapping, ks_sample=args.ks_sample, bins=args.bins)
        _write(args.out, save=profile.save)
    except DriftDataError as exc:
        return _fail(exc)
    print(f"{args.out}: {len(profile.columns)} columns, {profile.rows:,} rows")
    return EXIT_OK
