"""kube-apiserver's table printers for built-in kinds (k8s.io/kubernetes pkg/printers/internalversion).

The server sends every column, the wide ones (`priority: 1`) included, and kubectl hides those
unless `-o wide`; so `kubectl get events` shows LAST SEEN TYPE REASON OBJECT MESSAGE and
`kubectl get pods` READY STATUS RESTARTS AGE, computed here as kube computes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Row = Callable[[Obj], list[Any]]

UNKNOWN = "<unknown>"
NONE = "<none>"


def column(name: str, typ: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": typ, "format": fmt, "description": "", "priority": priority}


def _get(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(k)
    return obj


def _list(obj: Any, *keys: str) -> list[Any]:
    value = _get(obj, *keys)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _int(obj: Any, *keys: str) -> int:
    value = _get(obj, *keys)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    from modelops.sandbox.tables import human_duration as duration  # tables imports this module

    return duration(seconds)


def since(value: Any) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` when unset."""
    ts = _time(value)
    return UNKNOWN if ts is None else human_duration((datetime.now(UTC) - ts).total_seconds())


def _age(o: Obj) -> str:
    return since(_get(o, "metadata", "creationTimestamp"))


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: `k=v,...` sorted, `<none>` when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: requirements sorted by key, `<none>` when empty."""
    if not isinstance(selector, Mapping):
        return NONE
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in _list(selector, "matchExpressions"):
        key, op, values = expr.get("key", ""), expr.get("operator"), sorted(expr.get("values") or [])
        text = {
            "In": f"{key} in ({','.join(values)})",
            "NotIn": f"{key} notin ({','.join(values)})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(op), "<error>")
        reqs.append((key, text))
    return ",".join(t for _, t in sorted(reqs, key=lambda r: r[0])) or NONE


def _containers(pod_spec: Any) -> list[str]:
    """layoutContainerCells: container names and images, comma-joined."""
    containers = _list(pod_spec, "containers")
    return [",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers)]


def _more(items: list[str], count: int, limit: int = 3, empty: str = "<unset>") -> str:
    """listWithMoreString: the first `limit` items and `+ N more...`."""
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


# -- events -----------------------------------------------------------------------------------


def _event(o: Obj) -> list[Any]:
    first = since(o.get("firstTimestamp")) if _time(o.get("firstTimestamp")) else since(o.get("eventTime"))
    last = since(o.get("lastTimestamp")) if _time(o.get("lastTimestamp")) else first
    count = _int(o, "count")
    if isinstance(o.get("series"), Mapping):
        last, count = since(_get(o, "series", "lastObservedTime")), _int(o, "series", "count")
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    involved = o.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = _get(o, "source", "component") or o.get("reportingComponent") or ""
    instance = _get(o, "source", "host") or o.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    message = str(o.get("message") or "").strip()
    return [last, o.get("type", ""), o.get("reason", ""), target, involved.get("fieldPath", ""), source, message,
            first, count, _get(o, "metadata", "name")]  # fmt: skip


EVENT_COLUMNS = [
    column("Last Seen"),
    column("Type"),
    column("Reason"),
    column("Object"),
    column("Subobject", priority=1),
    column("Source", priority=1),
    column("Message"),
    column("First Seen", priority=1),
    column("Count", priority=1),
    column("Name", priority=1, fmt="name"),
]


# -- pods -------------------------------------------------------------------------------------


def _restartable(container: Any) -> bool:
    return isinstance(container, Mapping) and container.get("restartPolicy") == "Always"


def _pod(o: Obj) -> list[Any]:
    """printPod: ready/total containers, the reason a person wants to see, restarts and when."""
    spec, status = o.get("spec") or {}, o.get("status") or {}
    init_specs = {c.get("name"): c for c in _list(spec, "initContainers")}
    total = len(_list(spec, "containers")) + sum(1 for c in init_specs.values() if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    sidecar_last: datetime | None = None
    reason = status.get("reason") or status.get("phase") or ""
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in _list(status, "conditions")
    ):
        reason = "SchedulingGated"

    def later(current: datetime | None, cs: Mapping[str, Any]) -> datetime | None:
        finished = _time(_get(cs, "lastState", "terminated", "finishedAt"))
        return finished if finished and (current is None or finished > current) else current

    initializing = False
    init_statuses = _list(status, "initContainerStatuses")
    for i, cs in enumerate(init_statuses):
        restarts += _int(cs, "restartCount")
        last_restart = later(last_restart, cs)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += _int(cs, "restartCount")
            sidecar_last = later(sidecar_last, cs)
        terminated, waiting = _get(cs, "state", "terminated"), _get(cs, "state", "waiting")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") == 0:
            continue
        if sidecar and cs.get("started") is True:
            ready += 1 if cs.get("ready") else 0
            continue
        if isinstance(terminated, Mapping):
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif _int(terminated, "signal"):
                reason = f"Init:Signal:{_int(terminated, 'signal')}"
            else:
                reason = f"Init:ExitCode:{_int(terminated, 'exitCode')}"
        elif isinstance(waiting, Mapping) and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in _list(status, "conditions"))
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, sidecar_last
        running = False
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            last_restart = later(last_restart, cs)
            waiting, terminated = _get(cs, "state", "waiting"), _get(cs, "state", "terminated")
            if isinstance(waiting, Mapping) and waiting.get("reason"):
                reason = waiting["reason"]
            elif isinstance(terminated, Mapping) and terminated.get("reason"):
                reason = terminated["reason"]
            elif isinstance(terminated, Mapping):
                signal = _int(terminated, "signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated, 'exitCode')}"
            elif cs.get("ready") and isinstance(_get(cs, "state", "running"), Mapping):
                running = True
                ready += 1
        if reason == "Completed" and running:
            has_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in _list(status, "conditions"))
            reason = "Running" if has_ready else "NotReady"
    if _get(o, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    shown = str(restarts)
    if restarts and last_restart is not None:
        shown = f"{restarts} ({human_duration((datetime.now(UTC) - last_restart).total_seconds())} ago)"
    ips = _list(status, "podIPs")
    ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or NONE
    gates = _list(spec, "readinessGates")
    readiness = NONE
    if gates:
        conditions = {c.get("type"): c.get("status") for c in _list(status, "conditions")}
        readiness = f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [_get(o, "metadata", "name"), f"{ready}/{total}", reason, shown, _age(o), ip,
            spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, readiness]  # fmt: skip


POD_COLUMNS = [
    column("Name", fmt="name"),
    column("Ready"),
    column("Status"),
    column("Restarts"),
    column("Age"),
    column("IP", priority=1),
    column("Node", priority=1),
    column("Nominated Node", priority=1),
    column("Readiness Gates", priority=1),
]


# -- workloads --------------------------------------------------------------------------------


def _wide(template_spec: Any, selector: Any) -> list[Any]:
    return [*_containers(template_spec), format_selector(selector)]


WIDE = [column("Containers", priority=1), column("Images", priority=1), column("Selector", priority=1)]


def _deployment(o: Obj) -> list[Any]:
    replicas = _get(o, "spec", "replicas")
    desired = replicas if isinstance(replicas, int) else 1
    return [_get(o, "metadata", "name"), f"{_int(o, 'status', 'readyReplicas')}/{desired}",
            _int(o, "status", "updatedReplicas"), _int(o, "status", "availableReplicas"), _age(o),
            *_wide(_get(o, "spec", "template", "spec"), _get(o, "spec", "selector"))]  # fmt: skip


def _replica_set(o: Obj) -> list[Any]:
    return [_get(o, "metadata", "name"), _int(o, "spec", "replicas"), _int(o, "status", "replicas"),
            _int(o, "status", "readyReplicas"), _age(o),
            *_wide(_get(o, "spec", "template", "spec"), _get(o, "spec", "selector"))]  # fmt: skip


def _stateful_set(o: Obj) -> list[Any]:
    return [_get(o, "metadata", "name"), f"{_int(o, 'status', 'readyReplicas')}/{_int(o, 'spec', 'replicas')}",
            _age(o), *_containers(_get(o, "spec", "template", "spec"))]  # fmt: skip


def _daemon_set(o: Obj) -> list[Any]:
    status = o.get("status") or {}
    counts = [_int(status, k) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                        "updatedNumberScheduled", "numberAvailable")]  # fmt: skip
    return [_get(o, "metadata", "name"), *counts, format_labels(_get(o, "spec", "template", "spec", "nodeSelector")),
            _age(o), *_wide(_get(o, "spec", "template", "spec"), _get(o, "spec", "selector"))]  # fmt: skip


def _condition(o: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in _list(o, "status", "conditions"))


def _job(o: Obj) -> list[Any]:
    """printJob: what it came to, how much is done, and how long it took or has taken."""
    succeeded = _int(o, "status", "succeeded")
    if isinstance(_get(o, "spec", "completions"), int):
        completions = f"{succeeded}/{_int(o, 'spec', 'completions')}"
    elif _int(o, "spec", "parallelism") > 1:
        completions = f"{succeeded}/1 of {_int(o, 'spec', 'parallelism')}"
    else:
        completions = f"{succeeded}/1"
    start, end = _time(_get(o, "status", "startTime")), _time(_get(o, "status", "completionTime"))
    took = ""
    if start is not None:
        took = human_duration(((end or datetime.now(UTC)) - start).total_seconds())
    status = "Running"
    for kind, shown in (("Complete", "Complete"), ("Failed", "Failed"), (None, "Terminating"),
                        ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"),
                        ("SuccessCriteriaMet", "SuccessCriteriaMet")):  # fmt: skip
        if (kind is None and _get(o, "metadata", "deletionTimestamp")) or (kind and _condition(o, kind)):
            status = shown
            break
    return [_get(o, "metadata", "name"), status, completions, took, _age(o),
            *_wide(_get(o, "spec", "template", "spec"), _get(o, "spec", "selector"))]  # fmt: skip


def _cron_job(o: Obj) -> list[Any]:
    suspend = _get(o, "spec", "suspend")
    last = _get(o, "status", "lastScheduleTime")
    job = _get(o, "spec", "jobTemplate", "spec") or {}
    return [_get(o, "metadata", "name"), _get(o, "spec", "schedule") or "", _get(o, "spec", "timeZone") or NONE,
            "<unset>" if not isinstance(suspend, bool) else str(suspend), len(_list(o, "status", "active")),
            since(last) if last else NONE, _age(o), *_wide(_get(job, "template", "spec"), _get(job, "selector"))]  # fmt: skip


# -- services and endpoints -------------------------------------------------------------------


def _external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    kind, external = spec.get("type"), [str(ip) for ip in spec.get("externalIPs") or []]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in _list(status, "loadBalancer", "ingress")]
        found = [str(i) for i in ingress if i] + external
        return ",".join(found) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return UNKNOWN


def _service(o: Obj) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    ips = spec.get("clusterIPs") or []
    ports = ",".join(
        f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
        else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        for p in _list(spec, "ports")
    )  # fmt: skip
    return [_get(o, "metadata", "name"), spec.get("type", ""), ips[0] if ips else NONE, _external_ip(spec, status),
            ports or NONE, _age(o), format_labels(spec.get("selector"))]  # fmt: skip


def _endpoints(o: Obj) -> list[Any]:
    """formatEndpoints: up to three address:port pairs and how many more."""
    subsets = _list(o, "subsets")
    if not subsets:
        return [_get(o, "metadata", "name"), NONE, _age(o)]
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in _list(subset, "addresses")]
        ports = _list(subset, "ports") or [None]
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                host = f"[{ip}]" if ":" in ip else ip
                shown.append(host if port is None else f"{host}:{port.get('port')}")
    return [_get(o, "metadata", "name"), _more(shown, count, empty=""), _age(o)]


def _endpoint_slice(o: Obj) -> list[Any]:
    ports = [str(p.get("port") if p.get("port") is not None else p.get("name") or "*") for p in _list(o, "ports")]
    addresses = [str(a) for e in _list(o, "endpoints") for a in e.get("addresses") or []]
    return [_get(o, "metadata", "name"), o.get("addressType", ""), _more(ports, len(ports)),
            _more(addresses, len(addresses)), _age(o)]  # fmt: skip


NAME = column("Name", fmt="name")
AGE = column("Age")

PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Row]] = {
    ("", "events"): (EVENT_COLUMNS, _event),
    ("", "pods"): (POD_COLUMNS, _pod),
    ("", "services"): ([NAME, column("Type"), column("Cluster-IP"), column("External-IP"), column("Port(s)"), AGE,
                        column("Selector", priority=1)], _service),
    ("", "endpoints"): ([NAME, column("Endpoints"), AGE], _endpoints),
    ("discovery.k8s.io", "endpointslices"): ([NAME, column("AddressType"), column("Ports"), column("Endpoints"), AGE],
                                             _endpoint_slice),
    ("apps", "deployments"): ([NAME, column("Ready"), column("Up-to-date", "integer"),
                               column("Available", "integer"), AGE, *WIDE], _deployment),
    ("apps", "replicasets"): ([NAME, column("Desired", "integer"), column("Current", "integer"),
                               column("Ready", "integer"), AGE, *WIDE], _replica_set),
    ("apps", "statefulsets"): ([NAME, column("Ready"), AGE, *WIDE[:2]], _stateful_set),
    ("apps", "daemonsets"): ([NAME, *(column(n, "integer") for n in ("Desired", "Current", "Ready", "Up-to-date",
                              "Available")), column("Node Selector"), AGE, *WIDE], _daemon_set),
    ("batch", "jobs"): ([NAME, column("Status"), column("Completions"), column("Duration"), AGE, *WIDE], _job),
    ("batch", "cronjobs"): ([NAME, column("Schedule"), column("Timezone"), column("Suspend", "boolean"),
                             column("Active", "integer"), column("Last Schedule"), AGE, *WIDE], _cron_job),
}  # fmt: skip
"""(group, plural) -> (column definitions, row cells): kube's printer for that kind."""
