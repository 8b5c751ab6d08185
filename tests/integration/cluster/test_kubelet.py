"""The sandbox kubelet: pods of our image as processes, their status, probes, restarts, env, volumes."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import requests
import yaml

from modelops.sandbox import ServerThread
from modelops.sandbox.cluster import RunnerThread
from tests.integration.cluster.conftest import (
    CORE,
    IMAGE,
    Api,
    Obj,
    Workloads,
    alive,
    condition,
    container_status,
    ready,
)

# a tiny HTTP server of our image's python: /ready and /healthz answer 200 unless a flag file says otherwise
SERVER = """
import http.server, json, os, sys
flags = sys.argv[1]
port = json.loads(os.environ["MODELOPS_SANDBOX_PORT_MAP"])["9000"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ready":
            ok = os.path.exists(os.path.join(flags, "ready"))
        else:
            ok = not os.path.exists(os.path.join(flags, "sick"))
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, fmt, *args):
        print(self.path, args[1] if len(args) > 1 else "", flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def server_pod(name: str, **container_extra: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "command": ["python", "-c", SERVER, "/flags"],
                    "ports": [{"name": "http", "containerPort": 9000}],
                    "volumeMounts": [{"name": "flags", "mountPath": "/flags"}],
                    **container_extra,
                }
            ],
            "volumes": [{"name": "flags", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 2,
        },
    }


def flags_dir(w: Workloads, pod: str) -> Path:
    return w.state / "pods" / "default" / pod / "volumes" / "flags"


def log_of(w: Workloads, pod: str, container: str) -> str:
    path = w.state / "pods" / "default" / pod / f"{container}.log"
    return path.read_text() if path.exists() else ""


def pid_of(pod: Obj) -> int:
    return int(container_status(pod)["containerID"].removeprefix("sandbox://"))


def test_killed_server_process_is_restarted_and_its_restart_count_is_visible(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{CORE}/pods", server_pod("web"))
    pod = w.api.wait_pod("web", ready, "Ready")
    assert container_status(pod)["restartCount"] == 0
    first = pid_of(pod)
    os.kill(first, signal.SIGKILL)

    def restarted() -> Obj | None:
        p = w.api.get(f"{CORE}/pods/web")
        cs = container_status(p)
        return p if cs["restartCount"] == 1 and ready(p) and "running" in cs["state"] else None

    pod = w.api.wait(restarted, what="restartCount 1 and Ready again")
    cs = container_status(pod)
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    second = pid_of(pod)
    assert second != first
    assert alive(second)
    assert not alive(first)
    assert pod["status"]["phase"] == "Running"
    assert log_of(w, "web", "web").count("--- sandbox: container web started") == 2


def test_readiness_follows_the_probe(workloads: Workloads) -> None:
    w = workloads
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}
    w.api.create(f"{CORE}/pods", server_pod("web", readinessProbe=probe))
    # the probe runs and fails: Running, started, but not Ready
    w.api.wait(lambda: log_of(w, "web", "web").count("/ready 503") >= 2, what="two failed probes")
    pod = w.api.get(f"{CORE}/pods/web")
    assert pod["status"]["phase"] == "Running"
    assert container_status(pod)["started"] is True
    assert container_status(pod)["ready"] is False
    not_ready = condition(pod, "Ready")
    assert not_ready is not None
    assert not_ready["status"] == "False"
    assert not_ready["reason"] == "ContainersNotReady"
    assert condition(pod, "ContainersReady")["status"] == "False"  # type: ignore[index]

    (flags_dir(w, "web") / "ready").write_text("")
    w.api.wait(lambda: ready(w.api.get(f"{CORE}/pods/web")), what="Ready once the probe succeeds")
    (flags_dir(w, "web") / "ready").unlink()
    w.api.wait(lambda: not ready(w.api.get(f"{CORE}/pods/web")), what="not Ready once it fails again")
    assert container_status(w.api.get(f"{CORE}/pods/web"))["restartCount"] == 0


def test_liveness_failure_restarts_the_container(workloads: Workloads) -> None:
    w = workloads
    probe = {"httpGet": {"path": "/healthz", "port": 9000}, "periodSeconds": 1, "failureThreshold": 2}
    w.api.create(f"{CORE}/pods", server_pod("web", livenessProbe=probe))
    w.api.wait(lambda: log_of(w, "web", "web").count("/healthz 200") >= 1, what="a passing liveness probe")
    (flags_dir(w, "web") / "sick").write_text("")  # emptyDir survives the restart, so remove it after
    w.api.wait(lambda: container_status(w.api.get(f"{CORE}/pods/web"))["restartCount"] >= 1, what="restarted")
    (flags_dir(w, "web") / "sick").unlink()
    events = [e for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "web"]
    assert any(e["reason"] == "Unhealthy" and e["message"].startswith("Liveness probe failed") for e in events)
    assert any(e["reason"] == "Killing" for e in events)


ENV_DUMP = """
import json, os, sys
out = {"argv": sys.argv[1:], "cwd": os.getcwd()}
out["env"] = {k: v for k, v in os.environ.items()}
files = {}
for root in sys.argv[1:]:
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            files[os.path.relpath(p, root) if root != p else n] = open(p).read()
out["files"] = files
open(os.path.join(sys.argv[4], "written-by-pod"), "w").write("hello")
print("DUMP " + json.dumps(out), flush=True)
"""


def test_env_volumes_and_credentials_as_kubernetes_builds_them(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{CORE}/configmaps", {"metadata": {"name": "cfg"}, "data": {"level": "debug", "app.yaml": "a: 1\n"}})
    w.api.create(f"{CORE}/secrets", {"metadata": {"name": "creds"}, "data": {"password": "czNjcjN0"}})  # s3cr3t
    w.api.create(f"{CORE}/serviceaccounts", {"metadata": {"name": "reader"}})
    pod = {
        "metadata": {"name": "dump", "labels": {"app": "dump"}},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "reader",
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": ["python", "-c", ENV_DUMP],
                    "args": ["/etc/cfg", "/etc/creds", "/info", "/data", "$(GREETING)", "$$(GREETING)", "$(UNSET)"],
                    "env": [
                        {"name": "NAME", "value": "world"},
                        {"name": "GREETING", "value": "hello $(NAME)"},
                        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                        {"name": "CONFIG", "value": "/etc/cfg/app.yaml"},
                    ],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}],
                    "ports": [{"containerPort": 9000}],
                    "volumeMounts": [
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                        {"name": "creds", "mountPath": "/etc/creds"},
                        {"name": "info", "mountPath": "/info"},
                        {"name": "data", "mountPath": "/data"},
                    ],
                }
            ],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "app.yaml", "path": "app.yaml"}]}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {
                    "name": "info",
                    "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]},
                },
                {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}},
            ],
        },
    }
    w.api.create(f"{CORE}/pods", pod)
    done = w.api.wait_pod("dump", lambda p: p["status"].get("phase") == "Succeeded", "pod Succeeded")
    term = container_status(done)["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert condition(done, "Ready")["reason"] == "PodCompleted"  # type: ignore[index]
    line = next(x for x in log_of(w, "dump", "main").splitlines() if x.startswith("DUMP "))
    out = json.loads(line[5:])
    pod_dir = w.state / "pods" / "default" / "dump"
    vols = pod_dir / "volumes"
    pvc = w.state / "pvcs" / "default" / "shared"
    assert out["argv"] == [str(vols / "cfg"), str(vols / "creds"), str(vols / "info"), str(pvc),
                           "hello world", "$(GREETING)", "$(UNSET)"]  # fmt: skip
    env = out["env"]
    assert env["GREETING"] == "hello world"
    assert (env["LEVEL"], env["PASSWORD"], env["CFG_level"]) == ("debug", "s3cr3t", "debug")
    assert (env["POD_NAME"], env["POD_NS"], env["POD_IP"], env["APP"], env["SA"]) == (
        "dump", "default", "127.0.0.1", "dump", "reader",
    )  # fmt: skip
    assert env["CONFIG"] == str(vols / "cfg" / "app.yaml")
    assert env["HOME"] == str(pod_dir / "home")
    assert env["TMPDIR"] == str(pod_dir / "tmp")
    assert env["MODELOPS_IMAGE"] == IMAGE
    port_map = json.loads(env["MODELOPS_SANDBOX_PORT_MAP"])
    assert list(port_map) == ["9000"]
    assert port_map["9000"] != 9000
    assert json.loads(done["metadata"]["annotations"]["sandbox.modelops.dev/host-ports"]) == port_map
    assert out["files"]["app.yaml"] == "a: 1\n"
    assert out["files"]["password"] == "s3cr3t"
    assert out["files"]["name"] == "dump"
    assert (pvc / "written-by-pod").read_text() == "hello"
    kubeconfig = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == w.api.url
    assert kubeconfig["contexts"][0]["context"]["namespace"] == "default"
    user = kubeconfig["users"][0]["user"]
    if user:  # an API server with the TokenRequest API: the pod's ServiceAccount, as a projected token
        claims = json.loads(base64.urlsafe_b64decode(user["token"].split(".")[1] + "=="))
        assert claims["sub"] == "system:serviceaccount:default:reader"
        assert Path(user["tokenFile"]).read_text() == user["token"]


def test_no_credentials_when_automount_is_off(workloads: Workloads) -> None:
    w = workloads
    pod = {
        "metadata": {"name": "quiet"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {"name": "main", "image": IMAGE, "command": ["sh", "-c", 'echo "KUBECONFIG=[$KUBECONFIG]"']}
            ],
        },
    }
    w.api.create(f"{CORE}/pods", pod)
    w.api.wait(lambda: w.api.get(f"{CORE}/pods/quiet")["status"].get("phase") == "Succeeded", what="Succeeded")
    assert "KUBECONFIG=[]" in log_of(w, "quiet", "main")
    assert not (w.state / "pods" / "default" / "quiet" / "kubeconfig").exists()


def test_pod_of_a_missing_service_account_never_runs_and_never_gets_admin_access(workloads: Workloads) -> None:
    """Without its account's token a pod must not run with the sandbox's credential-less (admin) access."""
    w = workloads
    pod = {
        "metadata": {"name": "orphan"},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "nobody",
            "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", "echo started"]}],
        },
    }
    w.api.create(f"{CORE}/pods", pod)

    def failed_mounts() -> list[Obj]:
        return [e for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "orphan"]

    (event, *_) = w.api.wait(failed_mounts, what="a Warning event")
    assert event["type"] == "Warning"
    assert 'serviceaccount "nobody" not found' in event["message"]
    status = w.api.get(f"{CORE}/pods/orphan")["status"]
    assert status["phase"] == "Pending"
    assert "started" not in log_of(w, "orphan", "main")
    assert not (w.state / "pods" / "default" / "orphan" / "kubeconfig").exists()
    # the account appears: the pod runs, as itself
    w.api.create(f"{CORE}/serviceaccounts", {"metadata": {"name": "nobody"}})
    w.api.wait(lambda: w.api.get(f"{CORE}/pods/orphan")["status"].get("phase") == "Succeeded", what="Succeeded")
    config = yaml.safe_load((w.state / "pods" / "default" / "orphan" / "kubeconfig").read_text())
    assert config["users"][0]["user"]["token"]


def test_restart_policies_never_and_on_failure(workloads: Workloads) -> None:
    w = workloads
    never = {
        "metadata": {"name": "never"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", "exit 3"]}],
        },
    }
    # fails the first time, succeeds the second (the emptyDir outlives the container)
    once = "if [ -e /work/failed ]; then exit 0; fi; touch /work/failed; exit 1"
    on_failure = {
        "metadata": {"name": "onfailure"},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", once],
                            "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    }  # fmt: skip
    w.api.create(f"{CORE}/pods", never)
    w.api.create(f"{CORE}/pods", on_failure)
    failed = w.api.wait_pod("never", lambda p: p["status"].get("phase") == "Failed", "Never: Failed")
    cs = container_status(failed)
    assert (cs["state"]["terminated"]["exitCode"], cs["state"]["terminated"]["reason"], cs["restartCount"]) == (
        3,
        "Error",
        0,
    )
    ok = w.api.wait_pod(
        "onfailure", lambda p: p["status"].get("phase") == "Succeeded", "OnFailure: Succeeded after a restart"
    )
    cs = container_status(ok)
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 1


def test_pod_of_another_image_stays_pending_with_a_condition_and_one_warning_event(workloads: Workloads) -> None:
    w = workloads
    w.api.create(
        f"{CORE}/pods",
        {"metadata": {"name": "nginx"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
    )

    def reported() -> Obj | None:
        p = w.api.get(f"{CORE}/pods/nginx")
        return p if container_status(p).get("state", {}).get("waiting") else None

    pod = w.api.wait(reported, what="status written")
    assert pod["status"]["phase"] == "Pending"
    scheduled = condition(pod, "PodScheduled")
    assert scheduled is not None
    assert (scheduled["status"], scheduled["reason"]) == ("False", "SandboxUnsupportedImage")
    assert IMAGE in scheduled["message"]
    assert "nginx:1.27" in scheduled["message"]
    assert condition(pod, "ContainersReady")["status"] == "False"  # type: ignore[index]
    assert container_status(pod)["state"]["waiting"]["reason"] == "ImageNotRunnableInSandbox"

    def events() -> list[Obj]:
        return [e for e in w.api.items(f"{CORE}/events") if e["reason"] == "SandboxUnsupportedImage"]

    (event,) = w.api.wait(events, what="a Warning event")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "nginx"
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["message"].startswith(f"the sandbox runs only the modelops image {IMAGE}")
    # the pod changes again: still one event, still Pending, no process
    w.api.patch(f"{CORE}/pods/nginx", {"metadata": {"labels": {"touched": "yes"}}})
    w.api.wait(lambda: w.api.get(f"{CORE}/pods/nginx")["metadata"]["labels"].get("touched"), what="label seen")
    assert len(events()) == 1
    assert w.api.get(f"{CORE}/pods/nginx")["status"]["phase"] == "Pending"
    assert all(p.name != "nginx" or p.pid is None for p in w.runner.runner.pods())


def test_deleting_a_pod_stops_its_process(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{CORE}/pods", server_pod("web"))
    pod = w.api.wait_pod("web", ready, "Ready")
    pid = pid_of(pod)
    w.api.delete(f"{CORE}/pods/web")
    w.api.wait(lambda: not alive(pid), within=10, what="process stopped")


def test_stop_leaves_no_process_behind_not_even_grandchildren(workloads: Workloads) -> None:
    w = workloads
    # a container whose shell starts a background grandchild, and one ignoring SIGTERM
    spawner = ["sh", "-c", "sleep 300 & python -c 'import time; time.sleep(300)'"]
    stubborn = [
        "python",
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)",
    ]
    for name, command in (("spawner", spawner), ("stubborn", stubborn)):
        w.api.create(f"{CORE}/pods", {
            "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": IMAGE, "command": command}]},
        })  # fmt: skip
    w.api.wait(lambda: all(w.api.get(f"{CORE}/pods/{n}")["status"].get("phase") == "Running" for n in ("spawner", "stubborn")),
               what="both running")  # fmt: skip
    w.api.wait(lambda: "up" in log_of(w, "stubborn", "c"), what="SIGTERM ignored from now on")
    status = {p.name: p for p in w.runner.runner.pods()}
    assert status["spawner"].pid is not None
    assert status["stubborn"].pid is not None
    assert status["spawner"].state == "Running"
    pods_dir = str(w.state / "pods")

    def ours() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    environ = Path(f"/proc/{entry}/environ").read_bytes()
                except OSError:
                    continue
                if f"HOME={pods_dir}".encode() in environ and alive(int(entry)):
                    found.append(int(entry))
        return found

    assert len(ours()) >= 4  # two containers, the grandchild sleep, the python under sh
    w.runner.stop()  # grace capped: the stubborn one is SIGKILLed within seconds, not 30
    assert ours() == []
    assert not any(alive(p) for p in w.pids())


def test_kubectl_logs_shows_the_process_output(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with ServerThread(port=0, pod_log_dir=state / "pods") as server, RunnerThread(server.url, state, IMAGE) as runner:
        api = Api(server.url)
        script = "import sys; print('first start', flush=True); sys.exit(1)"
        api.create(f"{CORE}/pods", {
            "metadata": {"name": "talker"},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": IMAGE, "command": ["python", "-c", script]}]},
        })  # fmt: skip
        api.wait_pod("talker", lambda p: container_status(p).get("restartCount", 0) >= 1, "restarted once")
        r = requests.get(f"{server.url}{CORE}/pods/talker/log", params={"previous": "true"}, timeout=10)
        assert (r.status_code, r.text) == (200, "first start\n")
        r = requests.get(f"{server.url}{CORE}/pods/talker/log", params={"container": "nope"}, timeout=10)
        assert r.status_code == 400
        assert r.json()["message"] == "container nope is not valid for pod talker"
        if shutil.which("kubectl"):
            kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
            out = subprocess.run(
                ["kubectl", "--kubeconfig", str(kubeconfig), "logs", "talker", "--tail", "1", "--previous"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert out.stdout == "first start\n"
        pids = runner.runner.pids()
    assert not any(alive(p) for p in pids)


def test_crash_loop_back_off_is_visible_through_the_api_and_grows(tmp_path: Path) -> None:
    # The runner's documented setting, `restart_backoff` (the kubelet's first back-off: 10 s on a cluster), at 0.5 s.
    state = tmp_path / "state"
    with ServerThread(port=0) as server, RunnerThread(server.url, state, IMAGE, restart_backoff=0.5) as runner:
        api = Api(server.url)
        # the process prints its start time (its own clock, not our polling) and fails
        api.create(f"{CORE}/pods", {
            "metadata": {"name": "crashy"},
            "spec": {"containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", "date +%s.%N; exit 1"]}]},
        })  # fmt: skip
        counts: list[int] = []
        waiting: list[Obj] = []

        def four_restarts() -> bool:
            cs = container_status(api.get(f"{CORE}/pods/crashy"))
            if not counts or cs.get("restartCount", 0) != counts[-1]:
                counts.append(cs.get("restartCount", 0))
            w = (cs.get("state") or {}).get("waiting") or {}
            if w.get("reason") == "CrashLoopBackOff" and (not waiting or waiting[-1] != w):
                waiting.append(w)
            return counts[-1] >= 4

        api.wait(four_restarts, within=30, what="restartCount 4")
        pod = api.get(f"{CORE}/pods/crashy")
        events = [e for e in api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "crashy"]
        pids = runner.runner.pids()
    assert not any(alive(p) for p in pids)

    assert counts == sorted(counts)  # only ever grows
    assert counts[-1] >= 4
    assert container_status(pod)["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Running"  # restartPolicy Always: never Failed
    # the waiting state between starts, with kube's message naming the back-off, which grows
    assert waiting, "CrashLoopBackOff never seen"
    uid = pod["metadata"]["uid"]
    for w in waiting:
        assert w["message"].endswith(f" restarting failed container=c pod=crashy_default({uid})"), w
    backoffs = [float(w["message"].split()[1].removesuffix("s")) for w in waiting]
    assert backoffs == sorted(set(backoffs)), backoffs
    backoff_events = [e for e in events if e["reason"] == "BackOff"]
    assert backoff_events
    for e in backoff_events:
        assert (e["type"], e["involvedObject"]["kind"]) == ("Warning", "Pod")
        assert e["message"].startswith("Back-off restarting failed container")
    # the delay between starts: the first restart at once, then each gap longer than the one before
    starts = [float(line) for line in (state / "pods" / "default" / "crashy" / "c.log").read_text().splitlines()
              if line[:1].isdigit()]  # fmt: skip
    assert len(starts) >= 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps[:4])), gaps


def test_what_the_main_process_leaves_behind_ends_with_it(workloads: Workloads) -> None:
    # A container's processes live in its PID namespace (cgroup): when the main process exits, the runtime
    # kills the rest. Here the shell exits at once and leaves a background sleep.
    w = workloads
    w.api.create(f"{CORE}/pods", {
        "metadata": {"name": "leaver"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", "sleep 300 & echo $! > /work/pid"],
                            "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    })  # fmt: skip
    w.api.wait_pod("leaver", lambda p: p["status"].get("phase") == "Succeeded", "Succeeded")
    sleeper = int((w.state / "pods" / "default" / "leaver" / "volumes" / "work" / "pid").read_text())
    w.api.wait(lambda: not alive(sleeper), within=5, what=f"the left-behind sleep {sleeper} killed")
