"""Pure kubelet decisions: a container's argv and env as Kubernetes builds them, back-off, pod status.

No I/O here, so every rule is table-tested (tests/unit/test_sandbox_cluster_pure.py) against what
the real kubelet does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

IMAGE_ENTRYPOINT = ("modelops",)
IMAGE_CMD = ("run", "--all-namespaces")
MAX_BACKOFF = 300.0


def container_argv(
    container: Mapping[str, Any], entrypoint: Sequence[str] = IMAGE_ENTRYPOINT, cmd: Sequence[str] = IMAGE_CMD
) -> list[str]:
    """The argv a container runs, from its command/args and the image's ENTRYPOINT/CMD.

    As Kubernetes applies them: `command` replaces the ENTRYPOINT and drops the CMD; `args` alone
    replace the CMD; both given, both used; neither, the image's defaults.
    """
    command, args = container.get("command"), container.get("args")
    if command:
        return [str(c) for c in command] + [str(a) for a in args or []]
    if args:
        return [*entrypoint, *(str(a) for a in args)]
    return [*entrypoint, *cmd]


def local_argv(argv: Sequence[str], python: str) -> list[str]:
    """The argv to exec on this machine: the image's `modelops` and `python` are this interpreter's.

    Any other program (sh, sleep, ...) runs as found on PATH.
    """
    if not argv:
        return []
    exe = argv[0].rsplit("/", 1)[-1]
    if exe == "modelops":
        return [python, "-m", "modelops.cli", *argv[1:]]
    if re.fullmatch(r"python(3(\.\d+)?)?", exe):
        return [python, *argv[1:]]
    return list(argv)


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined references replaced, `$$` is `$`, anything else kept.

    Mirrors k8s.io/kubernetes third_party/forked/golang/expansion: an undefined `$(VAR)` stays as
    written, an unterminated `$(` too, and `$$(VAR)` gives the literal `$(VAR)`.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : close]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def rewrite_mount_paths(value: str, mounts: Sequence[tuple[str, str]]) -> str:
    """Replace container mount paths in a value by their local directories, in one pass.

    A mount path counts where it starts a path in the value (start of string or after `=`, `:`,
    `,`, a space or a quote) and is followed by `/`, the end, or a non-path character: so
    `--model-dir=/models/x` becomes `--model-dir=<pod dir>/volumes/models/x`, but `/modelsx` does not.
    Longest mount path first, so nested mounts win; a replacement is never rewritten again.
    """
    table: dict[str, str] = {}
    for mount_path, local in mounts:
        mp = mount_path.rstrip("/")
        if mp:
            table[mp] = local
    if not table:
        return value
    alternatives = "|".join(re.escape(mp) for mp in sorted(table, key=len, reverse=True))
    pattern = r"(?:^|(?<=[=:, \"']))(" + alternatives + r")(?=/|$|[^\w.\-])"
    return re.sub(pattern, lambda m: table[m.group(1)], value)


def restart_delay(restarts: int, initial: float, cap: float = MAX_BACKOFF) -> float:
    """Seconds the kubelet waits before restart number `restarts + 1` of a crashed container.

    As the kubelet's crash-loop back-off: the first restart is immediate, then `initial` doubling up
    to `cap` (10 s, 20 s, ... 300 s on a cluster).
    """
    if restarts <= 0 or initial <= 0:
        return 0.0
    return float(min(initial * 2 ** (restarts - 1), cap))


def job_backoff(failures: int, initial: float, cap: float = 360.0) -> float:
    """Seconds the Job controller waits before a new pod after `failures` failed ones (10 s doubling, 6 min)."""
    if failures <= 0 or initial <= 0:
        return 0.0
    return float(min(initial * 2 ** (failures - 1), cap))


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString such as maxSurge: an int, or "25%" of `total` rounded up or down."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}: must be an integer or percentage")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        pct = int(text[:-1])
        scaled = pct * total
        return -(-scaled // 100) if round_up else scaled // 100
    if text.isdigit():
        return int(text)
    raise ValueError(f"invalid value {value!r}: must be an integer or percentage")


# -- env -------------------------------------------------------------------------------------


@dataclass
class EnvSources:
    """What env `valueFrom`/`envFrom` may read: the pod, its ConfigMaps and Secrets (decoded)."""

    pod: Mapping[str, Any]
    configmaps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class EnvError(ValueError):
    """A reference that cannot be resolved (the kubelet's CreateContainerConfigError)."""


def field_ref(pod: Mapping[str, Any], path: str) -> str:
    """The downward API's fieldRef values."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName") or "sandbox",
        "spec.serviceAccountName": spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise EnvError(f"fieldRef {path!r} is not supported")
    return str(simple[path] or "")


def container_env(container: Mapping[str, Any], sources: EnvSources) -> list[tuple[str, str]]:
    """The container's env in kube's order (envFrom, then env, each `$(VAR)`-expanded by what precedes).

    Raises EnvError naming the variable and reference when a non-optional source is missing.
    """
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        if src.get("configMapRef"):
            ref = src["configMapRef"]
            data = sources.configmaps.get(ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'configmap "{ref.get("name")}" not found')
        elif src.get("secretRef"):
            ref = src["secretRef"]
            data = sources.secrets.get(ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'secret "{ref.get("name")}" not found')
        else:
            continue
        for k, v in data.items():
            env[prefix + k] = v
    for item in container.get("env") or []:
        name = str(item.get("name") or "")
        if not name:
            continue
        if item.get("valueFrom"):
            value = _value_from(name, item["valueFrom"], container, sources)
            if value is None:
                continue
        else:
            value = expand(str(item.get("value") or ""), env.get)
        env[name] = value
    return list(env.items())


def _value_from(name: str, ref: Mapping[str, Any], container: Mapping[str, Any], sources: EnvSources) -> str | None:
    if ref.get("fieldRef"):
        return field_ref(sources.pod, str(ref["fieldRef"].get("fieldPath") or ""))
    for kind, table in (("configMapKeyRef", sources.configmaps), ("secretKeyRef", sources.secrets)):
        if ref.get(kind):
            r = ref[kind]
            obj_kind = "configmap" if kind == "configMapKeyRef" else "secret"
            data = table.get(r.get("name", ""))
            if data is None or r.get("key") not in data:
                if r.get("optional"):
                    return None
                if data is None:
                    raise EnvError(f'env {name}: {obj_kind} "{r.get("name")}" not found')
                raise EnvError(f"env {name}: couldn't find key {r.get('key')} in {obj_kind} {r.get('name')}")
            return str(data[r["key"]])
    if ref.get("resourceFieldRef"):
        return _resource_field(ref["resourceFieldRef"], container)
    raise EnvError(f"env {name}: unsupported valueFrom {sorted(ref)}")


def _resource_field(ref: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """limits.cpu etc.: the declared value (divisor ignored beyond 1), or the node's capacity (0 here)."""
    res = str(ref.get("resource") or "")
    kind, _, what = res.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(what)
    return str(value if value is not None else "0")


# -- status ----------------------------------------------------------------------------------


@dataclass
class ContainerRun:
    """What the kubelet knows of one container, enough to write its containerStatus."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    pid: int | None = None
    last_state: Obj = field(default_factory=dict)
    container_id: str = ""

    def state_obj(self) -> Obj:
        if self.state == "running":
            return {"running": {"startedAt": self.started_at}}
        if self.state == "terminated":
            term: Obj = {
                "exitCode": self.exit_code if self.exit_code is not None else 0,
                "reason": self.reason,
                "startedAt": self.started_at or None,
                "finishedAt": self.finished_at,
                "containerID": self.container_id,
            }
            if self.message:
                term["message"] = self.message
            return {"terminated": {k: v for k, v in term.items() if v is not None}}
        waiting: Obj = {"reason": self.reason}
        if self.message:
            waiting["message"] = self.message
        return {"waiting": waiting}

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state_obj(),
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def exit_reason(code: int) -> str:
    """The kubelet's terminated reason: Completed for 0, Error otherwise (OOMKilled never here)."""
    return "Completed" if code == 0 else "Error"


def pod_phase(restart_policy: str, runs: Sequence[ContainerRun], init_done: bool) -> str:
    """The pod phase from its containers, as the kubelet's getPhase computes it.

    Pending while a container never ran; Running while one runs, or (restartPolicy Always, or
    OnFailure with a failure) all stopped but will restart; Succeeded when all ended with 0 and
    none restarts; Failed when all ended under Never with one not 0.
    """
    if not init_done:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for run in runs:
        if run.state == "running":
            running += 1
        elif run.state == "terminated":
            stopped += 1
            if run.exit_code == 0:
                succeeded += 1
        elif run.last_state.get("terminated") is not None:
            stopped += 1  # waiting to restart: it ran before
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def condition(
    ctype: str, status: bool, now: str, previous: Sequence[Mapping[str, Any]], reason: str = "", message: str = ""
) -> Obj:
    """A pod condition keeping its lastTransitionTime while its status does not change."""
    value = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == value else None
    out: Obj = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": since or now}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits, as kube decides."""
    containers = list((pod.get("spec") or {}).get("containers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            lim = limits.get(r)
            req = requests.get(r, lim)
            if lim is None or str(req) != str(lim):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def kubectl_state(pod: Mapping[str, Any]) -> str:
    """The STATUS column `kubectl get pods` shows (a waiting or terminated reason, else the phase)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (None, "", "ContainerCreating"):
            return str(state["waiting"]["reason"])
        if "terminated" in state and status.get("phase") not in ("Succeeded", "Failed"):
            return str(state["terminated"].get("reason") or "Terminated")
    return str(status.get("phase") or "Pending")
