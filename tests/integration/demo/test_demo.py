"""`modelops demo` is the full-loop integration test, run once, as a user runs it: from a wheel built
from the checkout and installed into a fresh virtual environment (the session's `installed_wheel`,
shared with tests/packaging), started in an empty directory.

It proves both that the loop closes (registry -> gated canary -> automatic rollback -> drift ->
retraining -> validated version -> gated canary, on the sandbox cluster with real processes and
real Prometheus) and that the demo needs nothing from the checkout (its manifests, artifacts and
data ship in the package). The venv sees the system's site-packages (`--system-site-packages`) for
the dependencies, so the test needs no network for them; the wheel's own `modelops` comes first on
its path, which the demo's output proves (it names where its assets are).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.wheel import InstalledWheel

ROOT = Path(__file__).resolve().parents[3]
DEMO_TIMEOUT = 900


@pytest.mark.slow
@pytest.mark.prometheus
@pytest.mark.timeout(DEMO_TIMEOUT + 120)
def test_the_demo_closes_the_loop_from_an_installed_wheel(installed_wheel: InstalledWheel, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("needs the prometheus binary (Debian package `prometheus`)")
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    done = installed_wheel.run(["modelops", "demo", "--dir", tmp_path / "sandbox"], cwd=elsewhere, timeout=DEMO_TIMEOUT)
    out = done.stdout + done.stderr
    print(out)  # pytest shows it when an assertion below fails
    tail = "\n".join(out.splitlines()[-60:])
    assert done.returncode == 0, f"modelops demo exited {done.returncode}:\n{tail}"
    assert "Traceback" not in out
    # the wheel's own package ran, not the checkout's (the narration wraps lines at words)
    words = " ".join(out.split())
    assert f"manifests and model artifacts from {installed_wheel.venv}/lib/" in words
    assert str(ROOT / "operator") not in words
    # each step said what it showed (the demo itself fails on anything else, naming the step)
    for expected in (
        "Step 1/5",
        "churn-v2 promoted",
        "rolled back automatically: canary churn-v3 failed analysis: predictions",
        "nothing: no drift",
        "held: 1 of 2",
        "Job created: 2 of 2",
        "registered by job/churn-drift-retrain-",
        "lineage: parent churn-v2",
        "That approval is the only manual step",
        "churn-v4 promoted",
        "The loop closed in",
    ):
        assert expected in words, f"{expected!r} missing from the demo's output:\n{tail}"
    # a successful run with --dir leaves the directory but no process: the sandbox is down
    assert not (tmp_path / "sandbox" / "sandbox" / "state.json").exists()
