"""Fixture `installed_wheel`: the checkout built as a wheel and installed into a fresh virtualenv.

Session-scoped: built once, shared by every test that runs the package as a user who installed it
(tests/packaging, tests/integration/demo). The wheel is built from a copy of the checkout's files
(tracked and untracked-but-not-ignored, as a fresh clone plus your new files), so the build
leaves nothing in the working tree and two builds never share a `build/` directory. The venv sees
the system's site-packages (`--system-site-packages`): the dependencies need no network, while
`modelops` itself comes from the wheel, first on the venv's path (tests check `modelops.__file__`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        """A user's environment with the venv activated: nothing points at the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env

    def run(self, argv: Sequence[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``argv[0]`` is a script of the venv (``modelops``, ``python``), run from ``cwd``."""
        program, *rest = (str(a) for a in argv)
        return subprocess.run(
            [str(self.bin / program), *rest],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _sources(into: Path) -> Path:
    """The checkout's files (what `git ls-files` lists, untracked-but-not-ignored included)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked source tree): build it as it is
        return ROOT
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # deleted-but-tracked files are listed too
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def build_and_install(folder: Path) -> InstalledWheel:
    source = _sources(folder / "src")
    dist = folder / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("modelops-*.whl"))
    assert len(wheels) == 1, wheels
    venv = folder / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    # The running interpreter's pip installs into the venv: no pip bootstrap inside it.
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", "--ignore-installed", str(wheels[0])],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return InstalledWheel(wheels[0], venv)


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    return build_and_install(tmp_path_factory.mktemp("installed-wheel"))
