"""CI fails on an unexpected skip (pytest plugin, loaded by tests/conftest.py).

Under ``MODELOPS_CI=1`` (set by .ci/run) a skipped test fails the session unless it is marked
``e2e`` (the Docker-only suite, which skips where ``docker info`` fails) or listed in
KNOWN_EXCEPTIONS. A skip means something the tests need was not installed, and a green run that
skipped it proves nothing; locally (no MODELOPS_CI) skips stay skips.
"""

from __future__ import annotations

import os

import pytest

ENV = "MODELOPS_CI"
ALLOWED_MARKER = "e2e"
E2E_DIR = "tests/e2e/"

KNOWN_EXCEPTIONS: dict[str, str] = {}
"""Node-id prefixes whose skips CI tolerates for now, each with the reason (none: .ci/run installs
everything, checkov included, in .ci/.checkov)."""

_unexpected: list[tuple[str, str]] = []


def _reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def _note(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    # A whole module skipped at import is a CollectReport: no keywords, so unexpected unless it is
    # the e2e suite's own directory.
    if ALLOWED_MARKER in getattr(report, "keywords", {}) or report.nodeid.startswith(E2E_DIR):
        return
    if any(report.nodeid.startswith(prefix) for prefix in KNOWN_EXCEPTIONS):
        return
    _unexpected.append((report.nodeid, _reason(report)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)  # a whole module skipped at import


def _enforced() -> bool:
    return os.environ.get(ENV) == "1"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _enforced() and _unexpected and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (_enforced() and _unexpected):
        return
    terminalreporter.write_sep(
        "=", f"{len(_unexpected)} unexpected skip(s): {ENV}=1 allows only `{ALLOWED_MARKER}`", red=True
    )
    for nodeid, reason in _unexpected:
        terminalreporter.write_line(f"SKIPPED {nodeid}: {reason}")
