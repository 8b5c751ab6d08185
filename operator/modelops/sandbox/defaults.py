"""kube-apiserver's defaulting of built-in kinds, so live objects look as they do on a real cluster.

An operator that diffs a desired Deployment or Service against the live one meets these fields on
every real cluster (`strategy`, `imagePullPolicy`, `clusterIP`, ...); if the sandbox stored objects
as sent, an operator that patches on every reconcile would pass every test here. The functions
follow k8s.io/kubernetes pkg/apis/{core,apps,batch}/v1 defaults.go and their generated callers
(zz_generated.defaults.go), plus what the registry strategies add on create (a Job's generated
selector, a Service's cluster IP and node ports, a Pod's initial status) and the fields Go always
serialises (`resources: {}` on containers, `creationTimestamp: null` in templates).

Everything works in place on plain dicts and never raises on malformed input: validation, which
runs after defaulting as in kube-apiserver, reports what is wrong.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable, Iterable
from typing import Any

from modelops.sandbox.schema import Cause, fmt

Obj = dict[str, Any]
Key = tuple[str, str]

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
KUBERNETES_SERVICE_IP = SERVICE_CIDR.network_address + 1  # reserved for default/kubernetes
MAX_INT32 = 2**31 - 1
JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")

_VOLUME_SOURCES_DEFAULT_MODE = ("secret", "configMap", "downwardAPI", "projected")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# distribution/reference, as parsers.ParseImageName uses it: [domain/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}))?$"
)


def _dict(parent: Obj, key: str) -> Obj | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _child(parent: Obj, key: str) -> Obj | None:
    """`parent[key]`, created empty when absent or null (null is unset to kube's decoder)."""
    if parent.get(key) is None:
        parent[key] = {}
    return _dict(parent, key)


def _dicts(parent: Obj | None, key: str) -> list[Obj]:
    value = parent.get(key) if parent is not None else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _path(obj: Any, *keys: str) -> Obj | None:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj if isinstance(obj, dict) else None


def _set_missing(obj: Obj, **values: Any) -> None:
    for k, v in values.items():
        if obj.get(k) in (None, ""):
            obj[k] = v


def _set_unset_number(obj: Obj, **values: int) -> None:
    """Go's zero value means unset for plain int32 fields (probe thresholds)."""
    for k, v in values.items():
        if obj.get(k) in (None, 0):
            obj[k] = v


# -- containers and pod specs -----------------------------------------------------------------


def image_pull_policy(image: Any) -> str:
    """SetDefaults_Container: Always for `:latest` or no tag (and no digest), else IfNotPresent."""
    m = _REFERENCE.match(image) if isinstance(image, str) else None
    if m is None:
        return "IfNotPresent"  # an unparsable name: kube ignores the error here, validation speaks later
    tag = m.group("tag") or ("latest" if not m.group("digest") else "")
    return "Always" if tag == "latest" else "IfNotPresent"


def _http_get(handler: Obj | None) -> None:
    action = _dict(handler, "httpGet") if handler is not None else None
    if action is not None:
        _set_missing(action, path="/", scheme="HTTP")


def _container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(c.get("image"))
    _set_missing(c, terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File")
    for port in _dicts(c, "ports"):
        _set_missing(port, protocol="TCP")
    for env in _dicts(c, "env"):
        field_ref = _path(env, "valueFrom", "fieldRef")
        if field_ref is not None:
            _set_missing(field_ref, apiVersion="v1")
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}  # a struct, not a pointer: Go always writes it
    for name in _PROBES:
        probe = _dict(c, name)
        if probe is None:
            continue
        _set_unset_number(probe, timeoutSeconds=1, periodSeconds=10, successThreshold=1, failureThreshold=3)
        _http_get(probe)
        grpc = _dict(probe, "grpc")
        if grpc is not None and grpc.get("service") is None:
            grpc["service"] = ""
    lifecycle = _dict(c, "lifecycle")
    if lifecycle is not None:
        _http_get(_dict(lifecycle, "postStart"))
        _http_get(_dict(lifecycle, "preStop"))


def _volume(v: Obj) -> None:
    if not any(k != "name" for k in v):
        v["emptyDir"] = {}  # SetDefaults_Volume: a volume with no source is an emptyDir
    for kind in _VOLUME_SOURCES_DEFAULT_MODE:
        src = _dict(v, kind)
        if src is not None and src.get("defaultMode") is None:
            src["defaultMode"] = 420  # 0644
    host_path = _dict(v, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    for item in _dicts(_dict(v, "downwardAPI"), "items"):
        _field_ref(item)
    for source in _dicts(_dict(v, "projected"), "sources"):
        for item in _dicts(_dict(source, "downwardAPI"), "items"):
            _field_ref(item)
        token = _dict(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
    claim_spec = _path(v, "ephemeral", "volumeClaimTemplate", "spec")
    if claim_spec is not None:
        _set_missing(claim_spec, volumeMode="Filesystem")


def _field_ref(item: Obj) -> None:
    ref = _dict(item, "fieldRef")
    if ref is not None:
        _set_missing(ref, apiVersion="v1")


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything below it: what every pod template gets."""
    _set_missing(spec, dnsPolicy="ClusterFirst", restartPolicy="Always", schedulerName="default-scheduler")
    # v1 keeps the deprecated `serviceAccount` as a mirror of `serviceAccountName` (either one may be sent)
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account:
        spec["serviceAccountName"] = spec["serviceAccount"] = account
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    for v in _dicts(spec, "volumes"):
        _volume(v)
    for group in _CONTAINER_LISTS:
        for c in _dicts(spec, group):
            _container(c)


def _pod_only(spec: Obj) -> None:
    """SetDefaults_Pod: defaults that a Pod gets and a pod template does not."""
    for group in ("containers", "initContainers"):
        for c in _dicts(spec, group):
            resources = _dict(c, "resources")
            limits = _dict(resources, "limits") if resources is not None else None
            if resources is not None and limits:
                requests = _child(resources, "requests")
                if isinstance(requests, dict):
                    for k, v in limits.items():
                        requests.setdefault(k, v)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for group in ("containers", "initContainers"):
            for c in _dicts(spec, group):
                for port in _dicts(c, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


def _template(template: Obj | None) -> None:
    if template is None:
        return
    meta = _child(template, "metadata")
    if isinstance(meta, dict):
        meta.setdefault("creationTimestamp", None)  # Go's zero metav1.Time in an embedded ObjectMeta
    spec = _dict(template, "spec")
    if spec is not None:
        pod_spec(spec)


def _claim(pvc: Obj) -> None:
    meta = _child(pvc, "metadata")
    if isinstance(meta, dict):
        meta.setdefault("creationTimestamp", None)
    spec = _dict(pvc, "spec")
    if spec is not None:
        _set_missing(spec, volumeMode="Filesystem")
    status = _child(pvc, "status")
    if isinstance(status, dict):
        _set_missing(status, phase="Pending")


# -- kinds ------------------------------------------------------------------------------------


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return {}  # validation reports a missing or malformed spec; nothing to default
    return spec


def pod(obj: Obj) -> None:
    spec = _spec(obj)
    _pod_only(spec)
    pod_spec(spec)


def deployment(obj: Obj) -> None:
    spec = _spec(obj)
    _set_missing(spec, replicas=1)
    strategy = _child(spec, "strategy")
    if isinstance(strategy, dict):
        _set_missing(strategy, type="RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if isinstance(rolling, dict):
                _set_missing(rolling, maxUnavailable="25%", maxSurge="25%")
    _set_missing(spec, revisionHistoryLimit=10, progressDeadlineSeconds=600)
    _template(_dict(spec, "template"))


def replica_set(obj: Obj) -> None:
    spec = _spec(obj)
    _set_missing(spec, replicas=1)
    _template(_dict(spec, "template"))


def stateful_set(obj: Obj) -> None:
    spec = _spec(obj)
    _set_missing(spec, podManagementPolicy="OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _child(strategy, "rollingUpdate")
        rolling = _dict(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        _set_missing(retention, whenDeleted="Retain", whenScaled="Retain")
    _set_missing(spec, replicas=1, revisionHistoryLimit=10)
    _template(_dict(spec, "template"))
    for pvc in _dicts(spec, "volumeClaimTemplates"):
        _claim(pvc)


def daemon_set(obj: Obj) -> None:
    spec = _spec(obj)
    strategy = _child(spec, "updateStrategy")
    if isinstance(strategy, dict):
        _set_missing(strategy, type="RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if isinstance(rolling, dict):
                for k, v in (("maxUnavailable", 1), ("maxSurge", 0)):
                    if rolling.get(k) is None:
                        rolling[k] = v
    _set_missing(spec, revisionHistoryLimit=10)
    _template(_dict(spec, "template"))


def _pod_failure_policy(spec: Obj) -> None:
    for rule in _dicts(_dict(spec, "podFailurePolicy"), "rules"):
        for pattern in _dicts(rule, "onPodConditions"):
            _set_missing(pattern, status="True")


def job(obj: Obj) -> None:
    """SetDefaults_Job (1.29+: podReplacementPolicy, manualSelector false)."""
    spec = _spec(obj)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    _job_labels(obj)
    _set_missing(spec, completionMode="NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    _pod_failure_policy(spec)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _template(_dict(spec, "template"))


def _job_labels(obj: Obj) -> None:
    """A Job without labels takes its template's (SetDefaults_Job, run again when read back)."""
    labels = _path(obj, "spec", "template", "metadata", "labels")
    meta = _dict(obj, "metadata")
    if labels and meta is not None and not meta.get("labels"):
        meta["labels"] = dict(labels)


def cron_job(obj: Obj) -> None:
    spec = _spec(obj)
    _set_missing(spec, concurrencyPolicy="Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    for k, v in (("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)):
        if spec.get(k) is None:
            spec[k] = v
    job_template = _dict(spec, "jobTemplate")
    if job_template is None:
        return
    meta = _child(job_template, "metadata")
    if isinstance(meta, dict):
        meta.setdefault("creationTimestamp", None)
    job_spec = _dict(job_template, "spec")
    if job_spec is not None:
        _pod_failure_policy(job_spec)
        _template(_dict(job_spec, "template"))


def service(obj: Obj) -> None:
    """SetDefaults_Service (the allocated fields come from `allocate_service`)."""
    spec = _spec(obj)
    _set_missing(spec, sessionAffinity="None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _path(spec, "sessionAffinityConfig", "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_missing(spec, type="ClusterIP")
    for port in _dicts(spec, "ports"):
        _set_missing(port, protocol="TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    if kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and spec.get("externalIPs")):
        _set_missing(spec, externalTrafficPolicy="Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer") and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def secret(obj: Obj) -> None:
    _set_missing(obj, type="Opaque")


def persistent_volume_claim(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        _set_missing(spec, volumeMode="Filesystem")


def endpoints(obj: Obj) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _set_missing(port, protocol="TCP")


DEFAULTERS: dict[Key, Callable[[Obj], None]] = {
    ("", "pods"): pod,
    ("", "services"): service,
    ("", "secrets"): secret,
    ("", "persistentvolumeclaims"): persistent_volume_claim,
    ("", "endpoints"): endpoints,
    ("apps", "deployments"): deployment,
    ("apps", "replicasets"): replica_set,
    ("apps", "statefulsets"): stateful_set,
    ("apps", "daemonsets"): daemon_set,
    ("batch", "jobs"): job,
    ("batch", "cronjobs"): cron_job,
}


def apply_defaults(key: Key, obj: Obj) -> None:
    """The defaults kube-apiserver's decoder fills into a built-in object of resource `key`, in place."""
    fn = DEFAULTERS.get(key)
    if fn is not None:
        fn(obj)


# -- what the registry adds on create and keeps on update ---------------------------------------


def generate_job_selector(obj: Obj) -> None:
    """The Job strategy's generateSelector (unless manualSelector): uid and name labels, uid selector."""
    spec = _spec(obj)
    meta = _dict(obj, "metadata") or {}
    template = _dict(spec, "template")
    if spec.get("manualSelector") is True or template is None:
        return
    tmeta = _child(template, "metadata")
    if not isinstance(tmeta, dict):
        return
    labels = _child(tmeta, "labels")
    selector = _child(spec, "selector")
    match = _child(selector, "matchLabels") if selector is not None else None
    if labels is None or match is None:
        return  # malformed: validation says so
    for label in JOB_NAME_LABELS:
        labels.setdefault(label, meta.get("name", ""))
    for label in JOB_UID_LABELS:
        labels.setdefault(label, meta.get("uid", ""))
    match.setdefault(JOB_UID_LABELS[0], meta.get("uid", ""))
    _job_labels(obj)


def qos_class(spec: Obj) -> str:
    """The pod's QoS class (Guaranteed, Burstable, BestEffort), as the Pod strategy records it on create."""
    containers = _dicts(spec, "containers") + _dicts(spec, "initContainers")
    requests: list[Obj] = []
    limits: list[Obj] = []
    for c in containers:
        res = _dict(c, "resources") or {}
        requests.append({k: v for k, v in (_dict(res, "requests") or {}).items() if k in ("cpu", "memory")})
        limits.append({k: v for k, v in (_dict(res, "limits") or {}).items() if k in ("cpu", "memory")})
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        set(lim) == {"cpu", "memory"} and all(req.get(k, lim[k]) == lim[k] for k in lim)
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


_NOT_READY_TOLERATIONS: tuple[Obj, ...] = tuple(
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for taint in ("not-ready", "unreachable")
)


def admit_pod(obj: Obj) -> None:
    """The default admission plugins' additions to a new Pod (ServiceAccount, Priority, DefaultTolerationSeconds).

    The ServiceAccount plugin's projected token volume (`kube-api-access-*`) is not added: the
    sandbox kubelet hands pods their token itself.
    """
    spec = _spec(obj)
    if not spec:
        return
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"] = "default"
    if spec.get("priority") is None and not spec.get("priorityClassName"):
        spec["priority"] = 0
    _set_missing(spec, preemptionPolicy="PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if isinstance(tolerations, list):
        for default in _NOT_READY_TOLERATIONS:
            if not any(_tolerates(t, default["key"]) for t in tolerations):
                tolerations.append(dict(default))


def _tolerates(toleration: Any, key: str) -> bool:
    """Whether a toleration already covers the NoExecute taint `key` (an empty key or effect is a wildcard)."""
    if not isinstance(toleration, dict):
        return False
    return bool(toleration.get("key") in (None, "", key) and toleration.get("effect") in (None, "", "NoExecute"))


def initial_status(key: Key, obj: Obj) -> None:
    """Status a registry strategy writes on create (after the client's status was dropped)."""
    if key == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(_spec(obj))}


def prepare_create(key: Key, obj: Obj, services: Iterable[Obj] = ()) -> list[Cause]:
    """Defaults, then what the strategy generates on create; `metadata.uid` must be set already.

    Returns the causes of a refused allocation (a taken or out-of-range cluster IP or node port).
    """
    apply_defaults(key, obj)
    if key == ("batch", "jobs"):
        generate_job_selector(obj)
    if key == ("", "pods"):
        admit_pod(obj)
    if key == ("", "services"):
        return allocate_service(obj, None, services)
    return []


def prepare_update(key: Key, obj: Obj, old: Obj, services: Iterable[Obj] = ()) -> list[Cause]:
    """Defaults on update; a Service keeps what was allocated when the new body leaves it out."""
    apply_defaults(key, obj)
    if key == ("batch", "jobs"):
        _job_labels(obj)
    if key == ("", "services"):
        return allocate_service(obj, old, services)
    return []


# -- Service IP and port allocation -------------------------------------------------------------


def _needs_cluster_ip(spec: Obj) -> bool:
    return bool(spec.get("type", "ClusterIP") != "ExternalName")


def _needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def _taken(services: Iterable[Obj], name: tuple[str, str]) -> tuple[set[str], set[int]]:
    ips: set[str] = set()
    ports: set[int] = set()
    for svc in services:
        meta = svc.get("metadata") or {}
        if (meta.get("namespace", ""), meta.get("name", "")) == name:
            continue
        spec = svc.get("spec") or {}
        ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if isinstance(ip, str))
        ports.update(p["nodePort"] for p in _dicts(spec, "ports") if isinstance(p.get("nodePort"), int))
        if isinstance(spec.get("healthCheckNodePort"), int):
            ports.add(spec["healthCheckNodePort"])
    return ips, ports


def _free_ip(taken: set[str]) -> str:
    first, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses
    while True:
        ip = ipaddress.ip_address(first + random.randrange(2, size - 1))  # not network, .1 or broadcast
        if str(ip) not in taken:
            return str(ip)


def _free_port(taken: set[int]) -> int:
    while True:
        port = random.choice(NODE_PORTS)
        if port not in taken:
            taken.add(port)
            return port


def allocate_service(obj: Obj, old: Obj | None, services: Iterable[Obj]) -> list[Cause]:
    """clusterIP(s), ipFamilies, ipFamilyPolicy and node ports, as the Service REST storage assigns them.

    On update the old allocation is patched into a body that leaves it out (as `kubectl replace`
    of the original manifest does), so it is kept.
    """
    spec = _spec(obj)
    if not spec:
        return []
    meta = obj.get("metadata") or {}
    taken_ips, taken_ports = _taken(services, (meta.get("namespace", ""), meta.get("name", "")))
    old_spec = _spec(old) if old is not None else {}
    causes: list[Cause] = []
    if not _needs_cluster_ip(spec):
        return causes
    if old is not None and _needs_cluster_ip(old_spec) and not spec.get("clusterIP"):
        for k in ("clusterIP", "clusterIPs"):
            if k in old_spec:
                spec[k] = old_spec[k]
    if not spec.get("clusterIP") and spec.get("clusterIPs"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    ip = spec.get("clusterIP")
    if not ip:
        spec["clusterIP"] = _free_ip(taken_ips)
    elif ip != "None" and (old is None or ip != old_spec.get("clusterIP")):
        causes += _check_ip(ip, taken_ips)
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    families = spec.get("ipFamilies") or old_spec.get("ipFamilies") or ["IPv4"]
    spec["ipFamilies"] = families
    if not spec.get("ipFamilyPolicy"):
        spec["ipFamilyPolicy"] = old_spec.get("ipFamilyPolicy") or "SingleStack"
    if _needs_node_ports(spec):
        old_ports = {p.get("name", ""): p.get("nodePort") for p in _dicts(old_spec, "ports")}
        for n, port in enumerate(_dicts(spec, "ports")):
            value = port.get("nodePort")
            if not value and old is not None and old_ports.get(port.get("name", "")):
                value = port["nodePort"] = old_ports[port.get("name", "")]
                continue
            if not value:
                port["nodePort"] = _free_port(taken_ports)
            else:
                causes += _check_port(f"spec.ports[{n}].nodePort", value, taken_ports)
                taken_ports.add(value)
    return causes


def _check_ip(ip: str, taken: set[str]) -> list[Cause]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return [Cause("FieldValueInvalid", "spec.clusterIPs[0]",
                      f"Invalid value: {fmt(ip)}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]  # fmt: skip
    prefix = f"Invalid value: [{fmt(ip)}]: failed to allocate IP {ip}: "
    if addr not in SERVICE_CIDR:
        detail = f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
        return [Cause("FieldValueInvalid", "spec.clusterIPs", prefix + detail)]
    if ip in taken:
        return [Cause("FieldValueInvalid", "spec.clusterIPs", prefix + "provided IP is already allocated")]
    return []


def _check_port(field: str, port: Any, taken: set[int]) -> list[Cause]:
    if not isinstance(port, int) or port not in NODE_PORTS:
        detail = "provided port is not in the valid range. The range of valid ports is 30000-32767"
        return [Cause("FieldValueInvalid", field, f"Invalid value: {fmt(port)}: {detail}")]
    if port in taken:
        return [Cause("FieldValueInvalid", field, f"Invalid value: {port}: provided port is already allocated")]
    return []
