"""The sandbox kubelet: pods of the project's image run as local processes, their status in the API.

What a container becomes here:
- argv: the container's command/args over the image's ENTRYPOINT ["modelops"] / CMD
  ["run", "--all-namespaces"], `$(VAR)`-expanded; `modelops` runs as `python -m modelops.cli`.
- env: the container's env/envFrom (values, ConfigMap/Secret keys, fieldRefs), plus HOME and
  TMPDIR in the pod's directory, KUBECONFIG (the pod's ServiceAccount token, through the
  TokenRequest API), MODELOPS_IMAGE, and MODELOPS_SANDBOX_PORT_MAP: every containerPort of the pod
  (and every numeric probe port) gets a free local port, also written to the pod annotation
  `sandbox.modelops.dev/host-ports` before the pod is Running.
- volumes: local directories under `<state>/pods/<ns>/<pod>/volumes/<name>` (emptyDir, configMap,
  secret, downwardAPI, projected), `<state>/pvcs/<ns>/<claim>` for a persistentVolumeClaim (shared
  by every pod using it), the path itself for hostPath. A process cannot see a mount at its
  container path, so where a mountPath starts a path in the container's command, args, env values
  or workingDir, it is rewritten to the local directory. `/tmp` (the image's WORKDIR) and
  `/var/run/secrets/kubernetes.io/serviceaccount` are the pod's own too.
- output: appended to `<state>/pods/<ns>/<pod>/<container>.log`, each start marked by a line.
- each process leads its own process group and gets SIGKILL when the thread that started it dies
  (PR_SET_PDEATHSIG), so no pod outlives the runner; when it exits, what is left of its group is
  killed, as a runtime kills the rest of a container whose main process ended.
A pod with any other image is never run: it stays Pending with `PodScheduled=False` and a Warning
Event `SandboxUnsupportedImage`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.kube import ApiStatusError, Controller, Informer, Kube, key_of
from modelops.sandbox.cluster.podspec import (
    ContainerRun,
    EnvError,
    EnvSources,
    condition,
    container_argv,
    container_env,
    exit_reason,
    expand,
    field_ref,
    kubectl_state,
    local_argv,
    pod_phase,
    qos_class,
    restart_delay,
    rewrite_mount_paths,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HOST_PORTS_ANNOTATION = "sandbox.modelops.dev/host-ports"
UNSUPPORTED_REASON = "SandboxUnsupportedImage"
UNSUPPORTED_WAITING = "ImageNotRunnableInSandbox"
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
COMPONENT = "kubelet"
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "COVERAGE_PROCESS_START")
TOKEN_SECONDS = 3607  # what the kubelet asks for a projected token
# a run that lasted this long resets the crash-loop back-off, as the kubelet forgets a back-off after 2 x max
BACKOFF_RESET_SECONDS = 600.0
MIN_KILL_GRACE = 2.0  # the kubelet's minimumGracePeriodInSeconds: never SIGKILL sooner after SIGTERM

_PR_SET_PDEATHSIG = 1
try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: a child must not load libs
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _child_setup(parent: int) -> None:
    """In the child between fork and exec: die with the parent thread, even if it is SIGKILLed."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def images_of(pod: Mapping[str, Any]) -> list[tuple[str, str]]:
    spec = pod.get("spec") or {}
    return [
        (str(c.get("name")), str(c.get("image")))
        for group in ("initContainers", "containers")
        for c in spec.get(group) or []
    ]


async def post_event(kube: Kube, obj: Mapping[str, Any], etype: str, reason: str, message: str, component: str) -> None:
    """A core/v1 Event about `obj`, as controllers and the kubelet record them (failures only logged)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    ts = now_iso()
    body = {
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": ns},
        "involvedObject": {
            "kind": obj.get("kind"),
            "apiVersion": obj.get("apiVersion"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": etype,
        "source": {"component": component, "host": "sandbox"} if component == COMPONENT else {"component": component},
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "sandbox",
    }
    try:
        await kube.create(k.EVENTS, ns, body)
    except (ApiStatusError, aiohttp.ClientError, TimeoutError) as exc:
        logger.debug("event %s for %s/%s not recorded: %s", reason, ns, meta.get("name"), exc)


class Kubelet(Controller):
    """Syncs every pod of the API to local processes (one PodWorker per pod)."""

    name = "kubelet"
    stop_grace_cap = 3.0

    def __init__(
        self,
        kube: Kube,
        pods: Informer,
        state_dir: Path,
        image: str,
        *,
        api_url: str,
        restart_backoff: float = 10.0,
        probe_period: float = 1.0,
    ) -> None:
        super().__init__()
        self.kube = kube
        self.pods = pods
        self.state_dir = Path(state_dir)
        self.image = image
        self.api_url = api_url
        self.restart_backoff = restart_backoff
        self.probe_period = probe_period
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.stopping: dict[tuple[str, str], PodWorker] = {}  # graceful deletions under way
        self.terminating: set[asyncio.Task[None]] = set()
        self.started_pids: list[int] = []
        self.warned: set[str] = set()
        self._probe_session: aiohttp.ClientSession | None = None
        pods.add_handler(lambda _t, obj, _old: self.enqueue(obj))

    @property
    def probe_session(self) -> aiohttp.ClientSession:
        if self._probe_session is None or self._probe_session.closed:
            self._probe_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        return self._probe_session

    def warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message, *args)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        key = (namespace, name)
        pod = self.pods.get(namespace, name)
        worker = self.workers.get(key)
        if worker is not None and (pod is None or pod["metadata"].get("uid") != worker.uid):
            self._terminate(key, worker, max(worker.grace(), MIN_KILL_GRACE))
            worker = None
        if pod is None:
            if key in self.stopping:  # removed before its grace period ended (a forced delete)
                self.stopping[key].hurry(MIN_KILL_GRACE)
            return None
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            stopping = self.stopping.get(key)
            if worker is not None:
                self._terminate(key, worker, deletion_grace(pod, worker.grace()), finalize=pod)
            elif stopping is not None and stopping.uid == meta.get("uid"):
                stopping.hurry(deletion_grace(pod, stopping.grace()))  # a later delete may shorten it
            else:  # no process of this pod here (never started, or started by an earlier runner)
                await self._remove(pod)
            return None
        if worker is not None:
            return None
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        foreign = [(c, img) for c, img in images_of(pod) if img != self.image]
        if foreign:
            await self._unsupported(pod, foreign)
            return None
        worker = PodWorker(self, pod)
        self.workers[key] = worker
        worker.start()
        return None

    def _terminate(self, key: tuple[str, str], worker: PodWorker, grace: float, finalize: Obj | None = None) -> None:
        """Stop `worker`'s containers; for a graceful deletion (`finalize`: the pod) also report them
        terminated and not ready, then remove the pod from the API, as the kubelet does."""
        if self.workers.get(key) is worker:
            del self.workers[key]
        if finalize is not None:
            self.stopping[key] = worker

        async def run() -> None:
            try:
                await worker.terminate(grace, final_status=finalize is not None)
                if finalize is not None:
                    await self._remove(finalize)
            finally:
                if self.stopping.get(key) is worker:
                    del self.stopping[key]

        task = asyncio.create_task(run(), name=f"terminate-{key[0]}/{key[1]}")
        self.terminating.add(task)
        task.add_done_callback(self.terminating.discard)

    async def _remove(self, pod: Obj) -> None:
        """The end of a graceful deletion: delete the pod with grace 0 (this very pod: uid precondition)."""
        meta = pod["metadata"]
        try:
            await self.kube.delete(
                k.PODS, meta.get("namespace"), meta["name"], grace_period_seconds=0, preconditions={"uid": meta["uid"]}
            )
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                logger.warning("pod %s/%s not removed: %s", meta.get("namespace"), meta["name"], exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("pod %s/%s not removed: %s", meta.get("namespace"), meta["name"], exc)

    async def _unsupported(self, pod: Obj, foreign: list[tuple[str, str]]) -> None:
        """Pending for good, with a condition saying why, and one Warning Event per pod."""
        status = pod.get("status") or {}
        if any(
            (cs.get("state") or {}).get("waiting", {}).get("reason") == UNSUPPORTED_WAITING
            for cs in status.get("containerStatuses") or []
        ):
            return  # already reported (maybe by an earlier runner)
        detail = ", ".join(f"container {c} uses {img}" for c, img in foreign)
        message = f"the sandbox runs only the modelops image {self.image}; {detail}"
        ts = now_iso()
        previous = status.get("conditions") or []
        spec = pod.get("spec") or {}
        new_status = {
            "phase": "Pending",
            "conditions": [
                condition("PodScheduled", False, ts, previous, UNSUPPORTED_REASON, message),
                condition("ContainersReady", False, ts, previous, UNSUPPORTED_REASON, message),
                condition("Ready", False, ts, previous, UNSUPPORTED_REASON, message),
            ],
            "containerStatuses": [
                {
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": UNSUPPORTED_WAITING, "message": message}},
                    "lastState": {},
                }
                for c in spec.get("containers") or []
            ],
            "qosClass": qos_class(pod),
        }
        meta = pod["metadata"]
        try:
            await self.kube.patch(
                k.PODS, meta.get("namespace"), meta["name"], {"status": new_status}, subresource="status"
            )
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise
        await post_event(self.kube, pod, "Warning", UNSUPPORTED_REASON, message, COMPONENT)
        logger.warning("pod %s/%s not run: %s", meta.get("namespace"), meta["name"], message)

    async def stop(self) -> None:
        """Stop the sync loop, then every process: SIGTERM, SIGKILL after the grace period (capped)."""
        await super().stop()
        for stopping in self.stopping.values():
            stopping.hurry(min(stopping.grace(), self.stop_grace_cap))
        workers = list(self.workers.items())
        self.workers.clear()
        await asyncio.gather(
            *(w.terminate(min(w.grace(), self.stop_grace_cap)) for _, w in workers), *self.terminating,
            return_exceptions=True,
        )  # fmt: skip
        if self._probe_session is not None:
            await self._probe_session.close()

    def pod_table(self) -> list[tuple[str, str, int | None, str]]:
        rows = []
        for obj in sorted(self.pods.items(), key=key_of):
            ns, name = key_of(obj)
            worker = self.workers.get((ns, name)) or self.stopping.get((ns, name))
            pid = worker.main_pid() if worker is not None else None
            rows.append((ns, name, pid, kubectl_state(obj)))
        return rows

    def all_pids(self) -> list[int]:
        return list(self.started_pids)


class PodWorker:
    """One pod's life on this machine: prepare (ports, volumes, credentials), run containers, report."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.namespace = str(meta.get("namespace") or "default")
        self.name = str(meta["name"])
        self.uid = str(meta.get("uid") or "")
        self.spec: Obj = pod.get("spec") or {}
        self.dir = kubelet.state_dir / "pods" / self.namespace / self.name
        self.restart_policy = str(self.spec.get("restartPolicy") or "Always")
        sidecars = [c for c in self.spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        self.init_containers = [c for c in self.spec.get("initContainers") or [] if c not in sidecars]
        self.containers: list[Obj] = [*sidecars, *(self.spec.get("containers") or [])]
        old_statuses = {cs.get("name"): cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
        self.runs = {
            str(c["name"]): ContainerRun(
                str(c["name"]),
                str(c.get("image")),
                restart_count=int(old_statuses.get(c["name"], {}).get("restartCount") or 0),
            )
            for c in self.containers
        }
        self.init_runs = {
            str(c["name"]): ContainerRun(str(c["name"]), str(c.get("image"))) for c in self.init_containers
        }
        self.init_done = not self.init_containers
        self.port_map: dict[int, int] = {}
        self.mounts: dict[str, list[tuple[str, str]]] = {}
        self.kubeconfig: Path | None = None
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.stopping: set[str] = set()
        self.crashes: dict[str, int] = {}
        self.start_time = (pod.get("status") or {}).get("startTime") or now_iso()
        self.pod_message = ""
        self._dirty = asyncio.Event()
        self._last_status: Obj | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._main: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._final = False
        self._terminal = False  # stopped for a deletion: containers terminated, phase Succeeded/Failed
        self._kill_at: float | None = None
        self._hurry = asyncio.Event()
        self._token_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def grace(self) -> float:
        value = self.spec.get("terminationGracePeriodSeconds")
        return float(value) if isinstance(value, int | float) else 30.0

    def main_pid(self) -> int | None:
        for c in self.containers:
            proc = self.procs.get(str(c["name"]))
            if proc is not None and proc.returncode is None:
                return proc.pid
        return None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_status(), name=f"status-{self.namespace}/{self.name}")
        self._main = asyncio.create_task(self._run(), name=f"pod-{self.namespace}/{self.name}")

    def hurry(self, grace: float) -> None:
        """Kill within `grace` seconds from now if that is sooner than the termination under way."""
        kill_at = asyncio.get_running_loop().time() + max(grace, 0.0)
        if self._kill_at is None or kill_at < self._kill_at:
            self._kill_at = kill_at
            self._hurry.set()

    async def terminate(self, grace: float, *, final_status: bool = False) -> None:
        """Stop containers as the kubelet does on deletion: SIGTERM, SIGKILL after `grace` seconds
        (sooner if `hurry` says so). With `final_status`, write the pod's last status: containers
        terminated, not ready, phase Succeeded or Failed (kubelets since 1.27 do before deleting)."""
        loop = asyncio.get_running_loop()
        self.hurry(grace)
        self.stopping.update(self.procs)
        if self._main is not None:
            self._main.cancel()
        for container_task in self._tasks:
            container_task.cancel()
        procs = [(name, p) for name, p in self.procs.items() if p.returncode is None]
        for name, proc in procs:
            self.stopping.add(name)
            _signal_group(proc.pid, signal.SIGTERM)
        if procs:
            logger.info("stopping pod %s/%s (grace %.1fs)", self.namespace, self.name, grace)
            pending = {asyncio.create_task(p.wait()) for _, p in procs}
            while pending and self._kill_at is not None and (left := self._kill_at - loop.time()) > 0:
                self._hurry.clear()
                hurried = asyncio.create_task(self._hurry.wait())
                done, _ = await asyncio.wait({*pending, hurried}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                hurried.cancel()
                pending -= done
            for t in pending:
                t.cancel()
        for _name, proc in self.procs.items():
            _signal_group(proc.pid, signal.SIGKILL)  # whatever is left, grandchildren too
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
        if self._token_task is not None:
            self._token_task.cancel()
        tasks: list[asyncio.Task[None] | None] = [self._main, *self._tasks, self._token_task]
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if final_status:
            self._mark_terminated()
            await self._write_final_status()

    def _mark_terminated(self) -> None:
        """Every container as the kubelet reports it on a terminated pod (exit code; 137 if it never ran)."""
        self._terminal = True
        for run in [*self.init_runs.values(), *self.runs.values()]:
            proc = self.procs.get(run.name)
            if run.state == "running" and proc is not None and proc.returncode is not None:
                rc = proc.returncode
                code = 128 - rc if rc < 0 else rc
                run.state, run.exit_code, run.reason, run.message = "terminated", code, exit_reason(code), ""
                run.finished_at = now_iso()
            elif run.state != "terminated":  # never started, or waiting to restart
                run.state, run.exit_code, run.reason = "terminated", 137, "ContainerStatusUnknown"
                run.message = "The container could not be located when the pod was terminated"
                run.finished_at = now_iso()
            run.ready = run.started = False
            run.pid = None

    async def _write_final_status(self) -> None:
        status = self.build_status()
        for attempt in range(3):
            try:
                await self.kubelet.kube.patch(
                    k.PODS, self.namespace, self.name, {"status": status}, subresource="status"
                )
                return
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                logger.warning("final status of pod %s/%s not written: %s", self.namespace, self.name, exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.debug("final status of pod %s/%s not written: %s", self.namespace, self.name, exc)
            await asyncio.sleep(0.2 * (attempt + 1))

    async def _run(self) -> None:
        try:
            await self._prepare()
            if not await self._run_init_containers():
                self._final = True
                self.publish()
                return
            self._tasks = [
                asyncio.create_task(self._container_loop(c), name=f"container-{self.name}/{c['name']}")
                for c in self.containers
            ]
            await asyncio.gather(*self._tasks)
            self._final = True
            self.publish()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("pod %s/%s failed to run", self.namespace, self.name)
            for run in self.runs.values():
                if run.state != "terminated":
                    run.state, run.reason, run.message = "waiting", "RunContainerError", str(exc)
            self.publish()

    # -- preparation --------------------------------------------------------------------------

    async def _prepare(self) -> None:
        """Directories, ports (annotated before Running), volumes and credentials; retried until they work."""
        self.dir.mkdir(parents=True, exist_ok=True)
        uid_file = self.dir / ".uid"
        if uid_file.exists() and uid_file.read_text() != self.uid:
            shutil.rmtree(self.dir / "volumes", ignore_errors=True)  # an earlier pod of the same name
        uid_file.write_text(self.uid)
        for sub in ("home", "tmp", "volumes", "serviceaccount"):
            (self.dir / sub).mkdir(exist_ok=True)
        self.publish()
        self.port_map = {p: free_port() for p in self._ports()}
        await self.kubelet.kube.patch(
            k.PODS,
            self.namespace,
            self.name,
            {
                "metadata": {
                    "annotations": {
                        HOST_PORTS_ANNOTATION: json.dumps({str(p): h for p, h in sorted(self.port_map.items())})
                    }
                }
            },
        )
        delay = 0.5
        while True:
            try:
                await self._mount_volumes()
                await self._credentials()
                break
            except _MountError as exc:
                self._set_waiting("ContainerCreating", str(exc))
                await post_event(self.kubelet.kube, self.pod, "Warning", "FailedMount", str(exc), COMPONENT)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _ports(self) -> list[int]:
        ports: set[int] = set()
        for c in [*self.init_containers, *self.containers]:
            for p in c.get("ports") or []:
                if isinstance(p.get("containerPort"), int):
                    ports.add(int(p["containerPort"]))
            for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(probe_kind) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = (probe.get(handler) or {}).get("port")
                    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
                        ports.add(int(port))
        return sorted(ports)

    def _set_waiting(self, reason: str, message: str) -> None:
        for run in self.runs.values():
            if run.state == "waiting":
                run.reason, run.message = reason, message
        self.publish()

    async def _mount_volumes(self) -> None:
        local: dict[str, str] = {}
        for vol in self.spec.get("volumes") or []:
            name = str(vol.get("name"))
            vdir = self.dir / "volumes" / name
            if vol.get("persistentVolumeClaim"):
                claim = str(vol["persistentVolumeClaim"].get("claimName") or name)
                path = self.kubelet.state_dir / "pvcs" / self.namespace / claim
                path.mkdir(parents=True, exist_ok=True)
                local[name] = str(path)
            elif vol.get("hostPath"):
                path = Path(str(vol["hostPath"].get("path") or "/"))
                if (vol["hostPath"].get("type") or "") in ("DirectoryOrCreate",):
                    path.mkdir(parents=True, exist_ok=True)
                local[name] = str(path)
            else:
                vdir.mkdir(parents=True, exist_ok=True)
                local[name] = str(vdir)
                if vol.get("configMap"):
                    await self._project(vdir, [{"configMap": vol["configMap"]}], vol["configMap"].get("defaultMode"))
                elif vol.get("secret"):
                    src = dict(vol["secret"])
                    src["name"] = src.get("secretName")
                    await self._project(vdir, [{"secret": src}], vol["secret"].get("defaultMode"))
                elif vol.get("downwardAPI"):
                    await self._project(
                        vdir, [{"downwardAPI": vol["downwardAPI"]}], vol["downwardAPI"].get("defaultMode")
                    )
                elif vol.get("projected"):
                    p = vol["projected"]
                    await self._project(vdir, p.get("sources") or [], p.get("defaultMode"))
                elif not vol.get("emptyDir") and vol.get("emptyDir") != {}:
                    self.kubelet.warn_once(
                        f"volume-{sorted(vol)}", "volume %s of pod %s/%s: kind %s is an empty directory in the sandbox",
                        name, self.namespace, self.name, [x for x in vol if x != "name"],
                    )  # fmt: skip
        self._container_mounts(local)

    def _container_mounts(self, local: dict[str, str]) -> None:
        """Each container's (mountPath, local directory) pairs, the implicit ones first."""
        implicit = [("/tmp", str(self.dir / "tmp")), (SA_PATH, str(self.dir / "serviceaccount"))]
        for c in [*self.init_containers, *self.containers]:
            mounts = list(implicit)
            for m in c.get("volumeMounts") or []:
                base = local.get(str(m.get("name")))
                if base is None:
                    raise _MountError(f"volumeMount {m.get('name')} of container {c['name']}: no such volume")
                target = str(Path(base) / str(m["subPath"])) if m.get("subPath") else base
                if m.get("subPath"):
                    Path(target).mkdir(parents=True, exist_ok=True)
                mounts = [mm for mm in mounts if mm[0] != m.get("mountPath")]
                mounts.append((str(m.get("mountPath") or ""), target))
            self.mounts[str(c["name"])] = mounts

    async def _project(self, vdir: Path, sources: list[Obj], default_mode: Any) -> None:
        """Write ConfigMap / Secret / downwardAPI / token files into a volume directory."""
        for src in sources:
            files: dict[str, bytes] = {}
            if src.get("configMap") or src.get("secret"):
                kind = "configMap" if src.get("configMap") else "secret"
                ref = src[kind]
                try:
                    data = await self._fetch(kind, str(ref.get("name") or ""))
                except _MountError:
                    if ref.get("optional"):
                        continue
                    raise
                items = ref.get("items")
                if items:
                    for it in items:
                        if it.get("key") not in data:
                            if ref.get("optional"):
                                continue
                            raise _MountError(f"{kind} {ref.get('name')}: no key {it.get('key')}")
                        files[str(it.get("path") or it["key"])] = data[it["key"]]
                else:
                    files.update(data)
            elif src.get("downwardAPI"):
                for it in src["downwardAPI"].get("items") or []:
                    if it.get("fieldRef"):
                        files[str(it["path"])] = field_ref(self.pod, str(it["fieldRef"].get("fieldPath"))).encode()
            elif src.get("serviceAccountToken"):
                token = await self._token(int(src["serviceAccountToken"].get("expirationSeconds") or TOKEN_SECONDS))
                files[str(src["serviceAccountToken"].get("path") or "token")] = (token or "").encode()
            for rel, content in files.items():
                target = vdir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                if isinstance(default_mode, int):
                    target.chmod(default_mode)

    async def _fetch(self, kind: str, name: str) -> dict[str, bytes]:
        res = k.CONFIGMAPS if kind == "configMap" else k.SECRETS
        try:
            obj = await self.kubelet.kube.get(res, self.namespace, name)
        except ApiStatusError as exc:
            if exc.code == 404:
                raise _MountError(f'MountVolume.SetUp failed: {res.kind.lower()} "{name}" not found') from None
            raise
        out: dict[str, bytes] = {}
        if kind == "configMap":
            out.update({key: str(v).encode() for key, v in (obj.get("data") or {}).items()})
            out.update({key: base64.b64decode(v) for key, v in (obj.get("binaryData") or {}).items()})
        else:
            out.update({key: base64.b64decode(v) for key, v in (obj.get("data") or {}).items()})
            out.update({key: str(v).encode() for key, v in (obj.get("stringData") or {}).items()})
        return out

    def _service_account(self) -> str:
        return str(self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default")

    async def _token(self, expiration: int = TOKEN_SECONDS) -> str | None:
        """A token for the pod's ServiceAccount through the TokenRequest API, bound to this pod."""
        sa = self._service_account()
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [],
                "expirationSeconds": expiration,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": self.name, "uid": self.uid},
            },
        }
        try:
            out = await self.kubelet.kube.request(
                "POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token", body=body
            )
        except ApiStatusError as exc:
            if exc.code == 404:
                # Never fall back to the sandbox's admin access: a pod runs as its account or not at all.
                raise _MountError(
                    f'error looking up service account {self.namespace}/{sa}: serviceaccount "{sa}" not found'
                ) from None
            raise
        token = ((out or {}).get("status") or {}).get("token") if isinstance(out, dict) else None
        return str(token) if token else None

    async def _credentials(self) -> None:
        """The pod's kubeconfig (and token files) unless automountServiceAccountToken is false."""
        automount = self.spec.get("automountServiceAccountToken")
        if automount is None:
            try:
                sa = await self.kubelet.kube.get(k.SERVICEACCOUNTS, self.namespace, self._service_account())
                automount = sa.get("automountServiceAccountToken")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        if automount is False:
            return
        token = await self._token(TOKEN_SECONDS)
        (self.dir / "serviceaccount" / "namespace").write_text(self.namespace)
        self._write_credentials(token)
        if token:
            self._token_task = asyncio.create_task(self._rotate_token(), name=f"token-{self.namespace}/{self.name}")

    def _write_credentials(self, token: str | None) -> None:
        """Token file and kubeconfig, each replaced atomically (a reader never sees half a file).

        The kubeconfig names the token file too (`tokenFile`, read first by client-go and the Python
        client), so a client that reloads its config gets the rotated token, as with projected tokens.
        """
        sa_dir = self.dir / "serviceaccount"
        if token:
            _atomic_write(sa_dir / "token", token)
        user: Obj = {"token": token, "tokenFile": str(sa_dir / "token")} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.kubelet.api_url}}],
            "contexts": [
                {"name": "sandbox", "context": {"cluster": "sandbox", "user": "pod", "namespace": self.namespace}}
            ],
            "current-context": "sandbox",
            "users": [{"name": "pod", "user": user}],
        }
        path = self.dir / "kubeconfig"
        _atomic_write(path, yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig = path

    async def _rotate_token(self) -> None:
        """A fresh token at 80% of the old one's life, as the kubelet rotates projected tokens."""
        while True:
            await asyncio.sleep(TOKEN_SECONDS * 0.8)
            try:
                token = await self._token(TOKEN_SECONDS)
            except (ApiStatusError, _MountError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("token of pod %s/%s not rotated: %s", self.namespace, self.name, exc)
                continue
            if token:
                self._write_credentials(token)

    # -- containers ---------------------------------------------------------------------------

    async def _env_sources(self, container: Obj) -> EnvSources:
        names: dict[str, set[str]] = {"configMap": set(), "secret": set()}
        for src in container.get("envFrom") or []:
            if src.get("configMapRef"):
                names["configMap"].add(str(src["configMapRef"].get("name")))
            if src.get("secretRef"):
                names["secret"].add(str(src["secretRef"].get("name")))
        for item in container.get("env") or []:
            ref = item.get("valueFrom") or {}
            if ref.get("configMapKeyRef"):
                names["configMap"].add(str(ref["configMapKeyRef"].get("name")))
            if ref.get("secretKeyRef"):
                names["secret"].add(str(ref["secretKeyRef"].get("name")))
        found: dict[str, dict[str, dict[str, str]]] = {"configMap": {}, "secret": {}}
        for kind, wanted in names.items():
            for name in wanted:
                try:
                    data = await self._fetch(kind, name)
                except _MountError:
                    continue
                found[kind][name] = {key: v.decode(errors="replace") for key, v in data.items()}
        return EnvSources(self.pod, found["configMap"], found["secret"])

    async def _process_spec(self, container: Obj) -> tuple[list[str], dict[str, str], str]:
        """argv, env and working directory of a container (EnvError when a reference is missing)."""
        name = str(container["name"])
        mounts = self.mounts.get(name, [])
        user_env = container_env(container, await self._env_sources(container))
        user_env = [(key, rewrite_mount_paths(v, mounts)) for key, v in user_env]
        env_map = dict(user_env)
        env: dict[str, str] = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "HOSTNAME": self.name,
                "HOME": str(self.dir / "home"),
                "TMPDIR": str(self.dir / "tmp"),
                "MODELOPS_IMAGE": self.kubelet.image,
            }
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(env_map)
        env["MODELOPS_SANDBOX_PORT_MAP"] = json.dumps({str(p): h for p, h in sorted(self.port_map.items())})
        argv = [rewrite_mount_paths(expand(a, env_map.get), mounts) for a in container_argv(container)]
        workdir = str(container.get("workingDir") or "/tmp")
        workdir = rewrite_mount_paths(workdir, mounts)
        os.makedirs(workdir, exist_ok=True)
        return local_argv(argv, sys.executable), env, workdir

    async def _spawn(self, container: Obj, run: ContainerRun) -> asyncio.subprocess.Process:
        argv, env, workdir = await self._process_spec(container)
        log_path = self.dir / f"{container['name']}.log"
        with open(log_path, "ab") as log:  # noqa: ASYNC230 - a local append, once per start
            log.write(
                f"--- sandbox: container {container['name']} started (restart {run.restart_count}) at {now_iso()} ---\n".encode()
            )
            log.flush()
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=functools.partial(_child_setup, os.getpid()),
            )
        self.kubelet.started_pids.append(proc.pid)
        return proc

    async def _run_init_containers(self) -> bool:
        """Each init container to completion in order (restarted with back-off unless Never)."""
        for c in self.init_containers:
            run = self.init_runs[str(c["name"])]
            while True:
                try:
                    code = await self._run_once(c, run)
                except _ConfigError:
                    await asyncio.sleep(2.0)
                    continue
                if code == 0:
                    break
                if self.restart_policy == "Never":
                    return False
                await self._backoff(c, run)
        self.init_done = True
        self.publish()
        return True

    async def _run_once(self, container: Obj, run: ContainerRun) -> int:
        """Start the process, probe it, wait for it; returns its exit code (128+signal when killed)."""
        name = str(container["name"])
        try:
            proc = await self._spawn(container, run)
        except EnvError as exc:
            run.state, run.reason, run.message = "waiting", "CreateContainerConfigError", str(exc)
            self.publish()
            raise _ConfigError(str(exc)) from None
        except OSError as exc:
            run.state, run.reason, run.message = "terminated", "StartError", str(exc)
            run.exit_code, run.finished_at = 128, now_iso()
            self.publish()
            return 128
        self.procs[name] = proc
        run.state, run.reason, run.message = "running", "", ""
        run.started_at, run.pid, run.container_id = now_iso(), proc.pid, f"sandbox://{proc.pid}"
        run.started = not container.get("startupProbe")
        run.ready = not container.get("readinessProbe") and run.started
        self.publish()
        await post_event(self.kubelet.kube, self.pod, "Normal", "Started", f"Started container {name}", COMPONENT)
        probes = [asyncio.create_task(self._probe_loop(container, run, proc))]
        try:
            rc = await proc.wait()
        finally:
            for t in probes:
                t.cancel()
            for t in probes:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        # A container ends with its main process: the runtime kills what is left in its PID namespace.
        _signal_group(proc.pid, signal.SIGKILL)
        code = 128 - rc if rc < 0 else rc
        run.state, run.exit_code, run.finished_at = "terminated", code, now_iso()
        run.reason = exit_reason(code)
        run.ready = run.started = False
        run.pid = None
        self.publish()
        return code

    async def _backoff(self, container: Obj, run: ContainerRun) -> None:
        """CrashLoopBackOff before the next start; restartCount grows when the new process starts."""
        run.last_state = run.state_obj()
        name = str(container["name"])
        if _seconds_between(run.started_at, run.finished_at) >= BACKOFF_RESET_SECONDS:
            self.crashes[name] = 0
        delay = restart_delay(self.crashes.get(name, 0), self.kubelet.restart_backoff)
        self.crashes[name] = self.crashes.get(name, 0) + 1
        if delay > 0:
            msg = f"back-off {_fmt_seconds(delay)} restarting failed container={container['name']} pod={self.name}_{self.namespace}({self.uid})"
            run.state, run.reason, run.message = "waiting", "CrashLoopBackOff", msg
            self.publish()
            await post_event(
                self.kubelet.kube, self.pod, "Warning", "BackOff", "Back-off restarting failed container", COMPONENT
            )
            await asyncio.sleep(delay)
        run.restart_count += 1
        run.state, run.reason, run.message = "waiting", "ContainerCreating", ""

    async def _container_loop(self, container: Obj) -> None:
        name = str(container["name"])
        run = self.runs[name]
        while True:
            try:
                code = await self._run_once(container, run)
            except _ConfigError:
                await asyncio.sleep(2.0)
                continue
            if name in self.stopping:
                return
            if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and code == 0):
                return
            await self._backoff(container, run)

    # -- probes -------------------------------------------------------------------------------

    async def _probe_loop(self, container: Obj, run: ContainerRun, proc: asyncio.subprocess.Process) -> None:
        startup, readiness, liveness = (container.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe"))
        if startup:
            if not await self._wait_probe(container, startup, first_period=self.kubelet.probe_period):
                await self._kill_unhealthy(container, proc, "Startup")
                return
            run.started = True
            run.ready = not readiness
            self.publish()
        tasks = []
        if readiness:
            tasks.append(asyncio.create_task(self._readiness(container, run, readiness)))
        if liveness:
            tasks.append(asyncio.create_task(self._liveness(container, proc, liveness)))
        if not tasks:
            return
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _wait_probe(self, container: Obj, probe: Obj, first_period: float) -> bool:
        """Until success (True) or failureThreshold consecutive failures (False)."""
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = min(float(probe.get("periodSeconds") or 10), first_period)
        failures, threshold = 0, int(probe.get("failureThreshold") or 3)
        while True:
            ok, _ = await self._probe(container, probe)
            if ok:
                return True
            failures += 1
            if failures >= threshold:
                return False
            await asyncio.sleep(period)

    async def _readiness(self, container: Obj, run: ContainerRun, probe: Obj) -> None:
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = float(probe.get("periodSeconds") or 10)
        ok_needed, fail_needed = int(probe.get("successThreshold") or 1), int(probe.get("failureThreshold") or 3)
        ok_count = fail_count = 0
        been_ready = False
        while True:
            ok, detail = await self._probe(container, probe)
            if ok:
                ok_count, fail_count = ok_count + 1, 0
                if ok_count >= ok_needed and not run.ready:
                    run.ready = been_ready = True
                    self.publish()
            else:
                ok_count, fail_count = 0, fail_count + 1
                if fail_count >= fail_needed and run.ready:
                    run.ready = False
                    self.publish()
                    await post_event(
                        self.kubelet.kube,
                        self.pod,
                        "Warning",
                        "Unhealthy",
                        f"Readiness probe failed: {detail}",
                        COMPONENT,
                    )
            await asyncio.sleep(period if been_ready else min(period, self.kubelet.probe_period))

    async def _liveness(self, container: Obj, proc: asyncio.subprocess.Process, probe: Obj) -> None:
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = float(probe.get("periodSeconds") or 10)
        fail_needed = int(probe.get("failureThreshold") or 3)
        failures = 0
        while True:
            ok, detail = await self._probe(container, probe)
            failures = 0 if ok else failures + 1
            if failures >= fail_needed:
                await post_event(
                    self.kubelet.kube, self.pod, "Warning", "Unhealthy", f"Liveness probe failed: {detail}", COMPONENT
                )
                await self._kill_unhealthy(container, proc, "Liveness")
                return
            await asyncio.sleep(period)

    async def _kill_unhealthy(self, container: Obj, proc: asyncio.subprocess.Process, which: str) -> None:
        msg = f"Container {container['name']} failed {which.lower()} probe, will be restarted"
        await post_event(self.kubelet.kube, self.pod, "Normal", "Killing", msg, COMPONENT)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), self.grace())
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)

    async def _probe(self, container: Obj, probe: Obj) -> tuple[bool, str]:
        timeout = float(probe.get("timeoutSeconds") or 1)
        try:
            if probe.get("httpGet"):
                h = probe["httpGet"]
                port = self._host_port(container, h.get("port"))
                scheme = str(h.get("scheme") or "HTTP").lower()
                path = str(h.get("path") or "/")
                headers = {str(x.get("name")): str(x.get("value")) for x in h.get("httpHeaders") or []}
                url = f"{scheme}://127.0.0.1:{port}{path if path.startswith('/') else '/' + path}"
                async with self.kubelet.probe_session.get(
                    url, headers=headers, ssl=False, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
                ) as resp:
                    await resp.read()
                    ok = 200 <= resp.status < 400
                    return ok, f"HTTP probe failed with statuscode: {resp.status}"
            if probe.get("tcpSocket"):
                port = self._host_port(container, probe["tcpSocket"].get("port"))
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
                writer.close()
                return True, ""
            if probe.get("exec"):
                argv, env, workdir = await self._process_spec(
                    {**container, "command": probe["exec"].get("command") or [], "args": []}
                )
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=env, cwd=workdir, start_new_session=True,
                )  # fmt: skip
                try:
                    rc = await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    _signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
                    return False, f"command timed out after {timeout:g}s"
                return rc == 0, f"command exited with {rc}"
            return True, ""  # grpc and unknown handlers: not checked in the sandbox
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    def _host_port(self, container: Obj, port: Any) -> int:
        if isinstance(port, str) and not port.isdigit():
            named = [p for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                raise ValueError(f"no container port named {port!r}")
            port = named[0]["containerPort"]
        number = int(port)
        return self.port_map.get(number, number)

    # -- status -------------------------------------------------------------------------------

    def publish(self) -> None:
        self._dirty.set()

    def build_status(self) -> Obj:
        ts = now_iso()
        previous = (self.pod.get("status") or {}).get("conditions") or []
        runs = [self.runs[str(c["name"])] for c in self.containers]
        phase = pod_phase(self.restart_policy, runs, self.init_done)
        if self._terminal:  # stopped for good: its containers will not be restarted whatever the policy
            phase = "Succeeded" if all(r.exit_code == 0 for r in runs) else "Failed"
        not_ready = [r.name for r in runs if not r.ready]
        finished = phase in ("Succeeded", "Failed")
        ready = not not_ready and phase == "Running"
        reason = "PodCompleted" if finished else "ContainersNotReady"
        msg = "" if finished else f"containers with unready status: [{' '.join(not_ready)}]"
        conds = [
            condition("PodReadyToStartContainers", True, ts, previous),
            condition(
                "Initialized", self.init_done, ts, previous,
                *(("", "") if self.init_done else ("ContainersNotInitialized",
                  f"containers with incomplete status: [{' '.join(r.name for r in self.init_runs.values() if r.exit_code != 0)}]")),
            ),
            condition("Ready", ready, ts, previous, *(("", "") if ready else (reason, msg))),
            condition("ContainersReady", ready, ts, previous, *(("", "") if ready else (reason, msg))),
            condition("PodScheduled", True, ts, previous),
        ]  # fmt: skip
        status: Obj = {
            "phase": phase,
            "conditions": conds,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "containerStatuses": [r.status() for r in runs],
            "qosClass": qos_class(self.pod),
        }
        if self.init_runs:
            status["initContainerStatuses"] = [r.status() for r in self.init_runs.values()]
        return status

    async def _write_status(self) -> None:
        """Write the status whenever it changed (coalesced; a pod gone meanwhile ends the writer)."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            status = self.build_status()
            comparable = _without_times(status)
            if self._last_status is not None and comparable == self._last_status:
                continue
            try:
                out = await self.kubelet.kube.patch(
                    k.PODS, self.namespace, self.name, {"status": status}, subresource="status"
                )
                self.pod = {**self.pod, "status": out.get("status") or status}
                self._last_status = comparable
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                logger.warning("status of pod %s/%s not written: %s", self.namespace, self.name, exc)
                await asyncio.sleep(0.5)
                self._dirty.set()
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.debug("status of pod %s/%s not written: %s", self.namespace, self.name, exc)
                await asyncio.sleep(0.5)
                self._dirty.set()


class _MountError(Exception):
    pass


class _ConfigError(Exception):
    pass


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def deletion_grace(pod: Mapping[str, Any], spec_grace: float) -> float:
    """Seconds between SIGTERM and SIGKILL for a pod being deleted: its deletionGracePeriodSeconds
    (else the spec's), but at least MIN_KILL_GRACE, as the kubelet's killContainer does."""
    grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
    return max(float(grace) if isinstance(grace, int | float) else spec_grace, MIN_KILL_GRACE)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _without_times(status: Obj) -> Obj:
    conds = [{k2: v for k2, v in c.items() if k2 != "lastTransitionTime"} for c in status.get("conditions") or []]
    return {**status, "conditions": conds}


def _seconds_between(a: str, b: str) -> float:
    try:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return (datetime.strptime(b, fmt) - datetime.strptime(a, fmt)).total_seconds()
    except ValueError:
        return 0.0


def _fmt_seconds(value: float) -> str:
    """Go's duration style, as in the kubelet's back-off message: 10s, 2m40s, 1.5s."""
    if value >= 60:
        minutes, seconds = divmod(int(value), 60)
        return f"{minutes}m{seconds}s"
    return f"{value:g}s"
