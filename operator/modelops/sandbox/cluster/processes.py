"""Process plumbing the sandbox supervisor needs: children that die with it, free ports, liveness by pid.

Linux only (the sandbox's target): `die_with_parent` uses prctl(PR_SET_PDEATHSIG), so a child of a
supervisor that is SIGKILLed gets SIGKILL too instead of living on as an orphan. The signal fires
when the *thread* that forked the child exits, so spawn children from the event loop's thread
(asyncio.create_subprocess_exec does), never from a short-lived worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

PR_SET_PDEATHSIG = 1

try:  # resolved once here: the preexec hook runs between fork and exec and must do almost nothing
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when this process dies."""
    parent = os.getpid()

    def hook() -> None:
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    """True when `pid` runs (a zombie, dead but not reaped, counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return state(pid) not in ("Z", "X", "")


def state(pid: int) -> str:
    """The process state letter from /proc/<pid>/stat (R, S, D, T, Z...); "" when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def kill_all(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        if pid > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive or `timeout` passes; returns the ones still alive."""
    remaining = [p for p in pids if alive(p)]
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = [p for p in remaining if alive(p)]
    return remaining


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """Every process but zombies, with its /proc stat fields after the command (state ppid pgrp
    session ...)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[0] not in ("Z", "X"):
            yield int(entry.name), fields


def session_members(sid: int) -> list[int]:
    """Every process whose session id is `sid` (the supervisor's session holds all it started)."""
    return [pid for pid, fields in live_processes() if int(fields[3]) == sid]


def open_log(path: Path) -> BinaryIO:
    """A child's log file, appended to (its directory created): pass as stdout/stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")


async def terminate(proc: asyncio.subprocess.Process | None, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds; returns once it is reaped."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
