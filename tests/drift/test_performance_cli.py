"""`modelops performance check`: exit 0 healthy, 1 degraded, 2 cannot judge; json, table and html."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from modelops.cli import build_parser, main

NOW = "2026-11-30T12:00:00Z"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A day of predictions (Parquet prediction log) and labels: right for 90%, then a bad 6 hours."""
    rng = np.random.default_rng(0)
    n = 600
    start = np.datetime64("2026-11-29T12:00:00", "s")
    times = start + np.arange(n) * 144  # 24 h
    y = rng.integers(0, 2, n)
    bad_hours = np.arange(n) >= 450
    right = np.where(bad_hours, rng.random(n) < 0.5, rng.random(n) < 0.92)
    pred = np.where(right, y, 1 - y)
    p1 = np.where(pred == 1, 0.55 + 0.4 * rng.random(n), 0.45 * rng.random(n))
    table = pa.table(
        {
            "timestamp": pa.array(times.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "request_id": [f"r{i}" for i in range(n)],
            "outputs": pa.array(
                [{"predict": int(a), "predict_proba_1": float(b)} for a, b in zip(pred, p1, strict=True)]
            ),
        }
    )
    preds = tmp_path / "preds.parquet"
    pq.write_table(table, preds)
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"r{i},{y[i]}\n" for i in range(n) if i % 5))
    return {"preds": preds, "labels": labels, "dir": tmp_path}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["performance", "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes_gate_on_the_verdict(capsys, files):
    base = ["--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--task", "binary", "--now", NOW]
    code, out, _ = run(capsys, *base, "--threshold", "accuracy>=0.7")
    assert code == 0, out
    assert out.startswith("HEALTHY (WithinThresholds)")
    code, out, _ = run(capsys, *base, "--threshold", "accuracy>=0.7", "--window", "6h")  # the bad hours
    assert code == 1, out
    assert out.startswith("DEGRADED (PerformanceDegraded): accuracy 0.")
    code, out, _ = run(capsys, *base, "--threshold", "accuracy>=0.7", "--min-coverage", "0.9")
    assert code == 2, out
    assert out.startswith("INCONCLUSIVE (InsufficientLabels)")
    code, out, err = run(capsys, *base, "--label-column", "churned")
    assert (code, out) == (2, "")
    assert err.startswith("modelops: error: MissingColumns: the labels at ")


def test_json_output_and_a_relative_threshold_from_a_registered_model_version(capsys, files):
    mv = files["dir"] / "mv.yaml"
    mv.write_text(yaml.safe_dump({"kind": "ModelVersion", "spec": {"metrics": {"accuracy": 0.9, "roc_auc": 0.95}}}))
    code, out, _ = run(capsys, "--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--task",
                       "binary", "--max-relative-drop", "accuracy=0.05", "--registered", str(mv), "--output", "json")  # fmt: skip
    body = json.loads(out)
    acc = next(m for m in body["metrics"] if m["name"] == "accuracy")
    assert acc["registered"] == 0.9
    assert acc["min"] == pytest.approx(0.855)
    assert code == (0 if acc["passed"] else 1)
    assert body["labelled"] == 480
    assert body["coverage"] == pytest.approx(0.8)


def test_config_file_is_a_drift_monitor_and_html_has_the_performance_section(capsys, files):
    cfg = files["dir"] / "monitor.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "kind": "DriftMonitor",
                "spec": {
                    "performance": {
                        "labels": {"uri": "replaced-by-the-flag"},
                        "task": "binary",
                        "chunk": "6h",
                        "estimate": True,
                        "metrics": [{"name": "accuracy", "min": 0.85}, {"name": "auc"}],
                    }
                },
            }
        )
    )
    out_file = files["dir"] / "report.html"
    code, _, _ = run(capsys, "--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--config",
                     str(cfg), "--output", "html", "-o", str(out_file), "--now", NOW)  # fmt: skip
    assert code == 1  # the bad last 6 hours drag the day's accuracy (~0.82) below 0.85
    page = out_file.read_text()
    assert "<h2>Model performance</h2>" in page
    assert "Metrics over time" in page
    assert page.count("<svg") == 2  # one chart per metric
    assert "Estimated performance" in page


def test_bad_flags_are_exit_2_with_one_line(capsys, files):
    base = ["--predictions", str(files["preds"]), "--labels", str(files["labels"])]
    code, _, err = run(capsys, *base)
    assert (code, err.strip()) == (2, "modelops: error: InvalidConfig: --task (or task in --config) is required: "
                                      "binary, multiclass or regression")  # fmt: skip
    code, _, err = run(capsys, *base, "--task", "binary", "--threshold", "auc=0.8")
    assert code == 2
    assert "expected METRIC>=VALUE" in err


def test_the_command_module_imports_no_numeric_stack():
    """`modelops --help` imports every command module: this one must cost nothing."""
    code = (
        "import argparse, sys; import modelops.commands.performance as m\n"
        "m.register(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted(n for n in ('numpy', 'pyarrow', 'scipy', 'sklearn', 'pydantic', 'yaml') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_window_in_the_config_applies(capsys, files):
    cfg = files["dir"] / "perf.yaml"
    cfg.write_text(yaml.safe_dump({"task": "binary", "window": "6h", "metrics": [{"name": "accuracy", "min": 0.7}]}))
    args = ["--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--now", NOW, "--output", "json"]
    code, out, _ = run(capsys, *args, "--config", str(cfg))
    body = json.loads(out)
    assert (code, body["predictions"], body["windowStart"]) == (1, 150, "2026-11-30T06:00:00Z")


@pytest.mark.parametrize(
    "flags",
    [
        ["--task", "binary"],
        ["--task", "regression", "--window", "6h"],
        [
            "--task", "multiclass", "--join-key", "customer_id", "--id-column", "cid", "--label-column", "y",
            "--event-time-column", "at", "--labels-format", "csv", "--predictions-format", "parquet", "--chunk", "1h",
        ],
    ],
)  # fmt: skip
def test_the_reads_started_before_validation_are_the_checks_own(flags):
    """The CLI starts reading from the unvalidated document, with PerformanceSettings' defaults
    written out again: they must be the model's, or every check would read its files twice."""
    from modelops.commands.performance import prefetch_plan, settings_document, validate_settings
    from modelops.drift.performance import read_plan
    from modelops.drift.performance_io import ReadPlan

    parser = build_parser(["performance"])
    args = parser.parse_args(["performance", "check", "--predictions", "p.parquet", "--labels", "l.csv", *flags])
    doc, windowed = settings_document(args)
    settings = validate_settings(doc)
    plan = prefetch_plan(doc, args, windowed)
    assert isinstance(plan, ReadPlan)
    assert plan == read_plan(
        settings, "p.parquet", args.predictions_format, need_time=windowed or settings.chunk is not None
    )


def test_a_document_that_is_not_plain_text_is_read_after_validation(tmp_path):
    from modelops.commands.performance import prefetch_plan, settings_document

    cfg = tmp_path / "perf.yaml"
    cfg.write_text(yaml.safe_dump({"task": "binary", "labels": {"idColumn": 7}}))
    args = build_parser(["performance"]).parse_args(
        ["performance", "check", "--predictions", "p.parquet", "--labels", "l.csv", "--config", str(cfg)]
    )
    doc, windowed = settings_document(args)
    assert prefetch_plan(doc, args, windowed) is None


NUMPY_SETTINGS_IN_A_FRESH_PROCESS = """
import sys
from modelops.cli import main
code = main(["performance", "check", "--predictions", sys.argv[1], "--labels", sys.argv[2], "--task", "binary",
             "--now", "2026-11-30T12:00:00Z", "--output", "json", "-o", sys.argv[3]])
from numpy._core import multiarray
print(code, multiarray._get_madvise_hugepage())
"""


@pytest.mark.parametrize(("environment", "huge_pages"), [({}, "False"), ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "True")])
def test_a_fresh_check_asks_numpy_for_no_huge_pages_unless_told(files, environment, huge_pages):
    """numpy's madvise(MADV_HUGEPAGE) on large arrays is off in the command's own process (measured
    slower on the VMs it runs on); the user's NUMPY_MADVISE_HUGEPAGE still wins."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"} | environment
    out = subprocess.run(
        [sys.executable, "-c", NUMPY_SETTINGS_IN_A_FRESH_PROCESS, str(files["preds"]), str(files["labels"]),
         str(files["dir"] / "out.json")],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.split()  # fmt: skip
    assert out == ["0", huge_pages]


ENTRY_POINT_WITH_A_TEARDOWN_MARK = (
    "import atexit, sys; atexit.register(lambda: print('teardown ran', file=sys.stderr));"
    "from modelops.cli import main; sys.exit(main())"
)


@pytest.mark.parametrize(
    ("flags", "exit_code", "first_line"),
    [
        (["--threshold", "accuracy>=0.7", "--window", "6h"], 1, "DEGRADED (PerformanceDegraded): accuracy 0."),
        (["--threshold", "accuracy>=0.7"], 0, "HEALTHY (WithinThresholds)"),
        (["--label-column", "churned"], 2, ""),
    ],
)
def test_the_command_process_ends_without_teardown_and_loses_no_output(files, flags, exit_code, first_line):
    """As its own process the check ends at once once its output is flushed (no interpreter
    teardown: the atexit mark never prints); exit code and output are those of the in-process run."""
    base = ["--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--task", "binary", "--now", NOW]
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT_WITH_A_TEARDOWN_MARK, "performance", "check", *base, *flags],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == exit_code, proc.stderr
    assert proc.stdout.startswith(first_line)
    assert ("metric" in proc.stdout) == (exit_code != 2)
    assert "teardown ran" not in proc.stderr


def test_in_process_the_check_returns_and_the_interpreter_goes_on(capsys, files):
    """Called with argv (tests, embedding), main returns the code: the process is not ended."""
    base = ["--predictions", str(files["preds"]), "--labels", str(files["labels"]), "--task", "binary", "--now", NOW]
    assert run(capsys, *base)[0] == 0


CHECK_THEN_LIST_MODULES = """
import sys
from modelops.cli import main
code = main(["performance", "check", "--predictions", sys.argv[1], "--labels", sys.argv[2], "--task", "binary",
             "--now", "2026-11-30T12:00:00Z", "--window", "24h", "--threshold", "auc>=0.5", "-o", sys.argv[3]])
print(code, "pyarrow.compute" in sys.modules, "pyarrow.parquet" in sys.modules, "pyarrow.csv" in sys.modules)
"""


def test_a_check_never_imports_pyarrow_compute(files):
    """Its 80-110 ms of wrapper generation at import is saved: the kernels are called through
    modelops.drift.arrow_kernels (reading Parquet and CSV, timestamps, classes, keys, metrics)."""
    out = subprocess.run(
        [sys.executable, "-c", CHECK_THEN_LIST_MODULES, str(files["preds"]), str(files["labels"]),
         str(files["dir"] / "out.txt")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["0", "False", "True", "True"]
