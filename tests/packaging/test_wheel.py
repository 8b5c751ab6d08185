"""Installed, not only checked out: the wheel carries what the commands need (issue 11).

The checkout is built as a wheel and installed into a fresh virtualenv (tests/support/wheel.py);
every command runs from an empty directory, as a user who ran ``pip install`` would run it. The
full `modelops demo` from this wheel is tests/integration/demo (the one full demo run in CI);
here: the entry points, the files the package ships, and commands that read them.
"""

from __future__ import annotations

import json
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.support.wheel import ROOT, InstalledWheel

# Files the package reads at run time (the demo's assets, the sandbox's Gateway API CRDs, the
# model server's OpenAPI document): each must be in the wheel.
SHIPPED = [
    "modelops/py.typed",
    "modelops/server/openapi.json",
    "modelops/sandbox/cluster/gateway-api-crds.yaml",
    "modelops/demo/assets/artifacts/churn-v1.joblib",
    "modelops/demo/assets/artifacts/churn-v2.joblib",
    "modelops/demo/assets/artifacts/churn-v3-shifted.joblib",
    "modelops/demo/assets/canary/churn-deployment.yaml",
    "modelops/demo/assets/drift/churn-drift.yaml",
    "modelops/demo/assets/registry/churn-v1.yaml",
    "modelops/demo/assets/retrain/reference.csv",
]


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory far from the checkout: the user's current directory."""
    return tmp_path_factory.mktemp("anywhere")


def test_the_wheel_ships_the_package_data(installed_wheel: InstalledWheel) -> None:
    names = set(zipfile.ZipFile(installed_wheel.wheel).namelist())
    assert [f for f in SHIPPED if f not in names] == []
    # every data file under the package in the checkout is in the wheel (new assets included)
    package = ROOT / "operator"
    data = {
        str(p.relative_to(package))
        for p in (package / "modelops").rglob("*")
        if p.is_file() and p.suffix in {".yaml", ".json", ".html", ".joblib", ".csv"} and "__pycache__" not in p.parts
    }
    assert sorted(data - names) == []
    assert not any(n.startswith(("tests/", "examples/", "benchmarks/")) for n in names)


def test_the_demo_extra_is_what_a_user_types_and_holds_no_test_tools(installed_wheel: InstalledWheel) -> None:
    with zipfile.ZipFile(installed_wheel.wheel) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(wheel.read(meta_name).decode())
        entry_points = wheel.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    extras = meta.get_all("Provides-Extra") or []
    assert {"demo", "sandbox", "serve", "drift", "dev"} <= set(extras)
    demo = [r for r in meta.get_all("Requires-Dist") or [] if 'extra == "demo"' in r]
    assert demo, "the demo extra requires nothing"
    assert not any(tool in r for r in demo for tool in ("pytest", "hypothesis", "ruff", "mypy"))
    assert "modelops = modelops.cli:main" in entry_points
    assert "kubectl-modelops = modelops.cli:kubectl_main" in entry_points


def test_the_installed_package_is_the_one_that_runs(installed_wheel: InstalledWheel, elsewhere: Path) -> None:
    done = installed_wheel.run(["python", "-c", "import modelops; print(modelops.__file__)"], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"{installed_wheel.venv}/lib/")
    assert str(ROOT) not in done.stdout


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["demo", "--help"], ["drift", "check", "--help"], ["sandbox", "up", "--help"], ["--version"]],
    ids=" ".join,
)
def test_entry_points_answer_from_anywhere(installed_wheel: InstalledWheel, elsewhere: Path, argv: list[str]) -> None:
    done = installed_wheel.run(["modelops", *argv], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: modelops" if argv != ["--version"] else "modelops 0.1.0")
    assert "Traceback" not in done.stderr
    plugin = installed_wheel.run(["kubectl-modelops", "--help"], cwd=elsewhere)
    assert plugin.stdout.startswith("usage: kubectl modelops")


def test_commands_read_the_files_the_package_ships(installed_wheel: InstalledWheel, elsewhere: Path) -> None:
    """From an empty directory, with the installed package only: a drift check of the demo's
    reference data against itself, a registration of a demo artifact, the Gateway API CRDs the
    sandbox installs and the server's OpenAPI document."""
    code = (
        "import json; from modelops.demo.assets import ASSETS;"
        "from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS;"
        "from modelops.server.app import openapi_document;"
        "print(json.dumps({'assets': str(ASSETS), 'crds': GATEWAY_API_CRDS.read_text().count('kind: CustomResourceDefinition'),"
        "'openapi': json.loads(openapi_document())['openapi']}))"
    )
    done = installed_wheel.run(["python", "-c", code], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["assets"].startswith(f"{installed_wheel.venv}/lib/")
    assert found["crds"] >= 2
    assert found["openapi"].startswith("3.")
    reference = Path(found["assets"]) / "retrain" / "reference.csv"
    check = installed_wheel.run(
        ["modelops", "drift", "check", "--reference", reference, "--current", reference, "--output", "json"],
        cwd=elsewhere,
    )
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["datasetDrift"] is False
    artifact = Path(found["assets"]) / "artifacts" / "churn-v1.joblib"
    registered = installed_wheel.run(
        ["modelops", "registry", "register", artifact, "--name", "churn", "--version", "1", "--dry-run"],
        cwd=elsewhere,
    )
    assert registered.returncode == 0, registered.stderr
    assert "kind: ModelVersion" in registered.stdout
    assert f"uri: file://{artifact}" in registered.stdout
