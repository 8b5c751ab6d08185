"""The demo's one continuous story: registry -> gated canary -> rollback -> drift -> retraining -> canary.

One ModelDeployment `churn` tracks model churn (the newest approved Production version) under live
traffic from the built-in load generator, through the sandbox's Gateway. Each step acts as a person
or a client would and then only watches: every decision shown is the operator's.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.demo import assets
from modelops.demo.stage import DemoFailure, Stage, condition, status_of
from modelops.demo.traffic import FEATURE_NAMES, SHIFT, Traffic
from modelops.demo.view import Column, Table
from modelops.demo.watch import DriftWatch, RolloutWatch, healthy_on
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_POLICY, MODEL_VERSION

Obj = dict[str, Any]
NAME = "churn"
MONITOR = "churn-drift"
GATEWAY = ("gateway.networking.k8s.io", "v1", "gateways")
LOCAL_PORTS = "sandbox.modelops.dev/local-ports"
ROLLOUT_TIMEOUT = 240.0
RATE, ROWS = 20, 6
"""The load generator: requests per second, customers per request."""

STEPS = (
    "Register churn-v1 and deploy it; live traffic flows",
    "Register churn-v2 (better offline metrics) and approve it: canary steps analysed on live metrics, to 100%",
    "Register a broken churn-v3 (it answers 'churn' for most customers): rolled back automatically",
    "Shift the traffic: the drift CronJob flags it, the debounce holds, a retraining Job registers churn-v4",
    "churn-v4 passes its validation gates and rolls out by canary",
)


class Story:
    """The five steps, in order; ``step`` is the one running (for the failure line)."""

    def __init__(self, stage: Stage, prometheus: bool) -> None:
        self.stage = stage
        self.prometheus = prometheus
        self.step = 0
        self.traffic: Traffic | None = None
        self.watch = RolloutWatch(stage, NAME, None)
        self.skipped: list[str] = []
        self.retrained: str | None = None
        self.parent: str | None = None

    # -- helpers ------------------------------------------------------------------------------

    def modelops(self, *argv: str) -> str:
        """Run a `modelops` command in this process (as a person would type it); its output, or DemoFailure."""
        from modelops.cli import main

        shown = " ".join(a if " " not in a else f'"{a}"' for a in argv)
        self.stage.say(f"$ modelops {shown}")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--kubeconfig", self.stage.kubeconfig])
        text = (out.getvalue() + err.getvalue()).strip()
        for line in text.splitlines():
            self.stage.note(line)
        if code != 0:
            raise DemoFailure(f"`modelops {argv[0]} {argv[1]}` exited {code}: {text.splitlines()[-1] if text else ''}")
        return text

    def register(self, relative: str) -> Obj:
        """Create the ModelVersion of ``relative`` and wait until verified and through its gates (Staging)."""
        body = assets.load(relative, self.stage.values)
        name = body["metadata"]["name"]
        self.stage.api.create(MODEL_VERSION, self.stage.namespace, body)
        metrics = ", ".join(f"{k} {v}" for k, v in (body["spec"].get("metrics") or {}).items())
        self.stage.say(f"modelversion/{name} registered (offline metrics: {metrics})")
        return self.through_gates(name)

    def through_gates(self, name: str) -> Obj:
        def staged(o: Obj) -> bool:
            st = status_of(o)
            if st.get("phase") == "Failed":
                raise DemoFailure(f"{name} failed verification: {st.get('message')}")
            refused = condition(o, "StageSynced") or {}
            if refused.get("reason") == "ValidationFailed":
                raise DemoFailure(f"{name} was refused by its validation gates: {refused.get('message')}")
            return st.get("phase") == "Verified" and st.get("stage") == "Staging"

        obj = self.stage.wait_for(MODEL_VERSION, name, staged, "verification and Staging", timeout=60)
        st = status_of(obj)
        digest = str(st.get("verifiedDigest") or "")
        self.stage.note(f"artifact digest verified ({digest[:19]}...)")
        change: Obj = next((h for h in reversed(st.get("history") or []) if h.get("to") == "Staging"), {})
        self.stage.note(f"{change.get('message') or 'stage None -> Staging'}")
        return obj

    def approve(self, name: str, who: str, why: str) -> None:
        self.watch.windows.clear()  # the traffic split is counted per rollout
        self.modelops("registry", "promote", name, "--to", "Production", "--approved-by", who, "--reason", why)

    def start_traffic(self) -> None:
        url = self.gateway_url() + f"/v2/models/{NAME}/infer"
        self.traffic = Traffic(url, rate=RATE, concurrency=8, rows=ROWS).start()
        self.watch.traffic = self.traffic
        self.stage.say(
            f"live traffic: the built-in load generator sends {RATE} requests/s of {ROWS} customers each to {url} "
            "(the Gateway `models`, whose HTTPRoute `churn` the operator owns)"
        )

    def gateway_url(self, timeout: float = 30) -> str:
        custom = client.CustomObjectsApi(self.stage.api.api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiException):
                gw: Obj = self.stage.plain(
                    custom.get_namespaced_custom_object(*GATEWAY[:2], self.stage.namespace, GATEWAY[2], "models")
                )
                ports = json.loads(((gw.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PORTS) or "{}")
                if "80" in ports:
                    return f"http://127.0.0.1:{ports['80']}"
            time.sleep(0.2)
        raise DemoFailure(f"the sandbox's gateway published no local port for Gateway models within {timeout:.0f}s")

    def measured(self, version: str) -> str:
        parts = []
        for weight in (25, 50):
            share, total = self.watch.share_at(weight, version)
            if total:
                parts.append(f"{100 * share:.0f}% of {total} answers at weight {weight}%")
        return "; ".join(parts) or "no answers counted at 25% or 50%"

    # -- the story ----------------------------------------------------------------------------

    def run(self) -> None:
        self.setup()
        for index, act in enumerate((self.step1, self.step2, self.step3, self.step4, self.step5), start=1):
            self.step = index
            self.stage.heading(f"Step {index}/5: {STEPS[index - 1]}")
            act()
        self.step = 6

    def setup(self) -> None:
        policy = assets.load("canary/churn-policy.yaml", self.stage.values)
        self.stage.api.create(MODEL_POLICY, self.stage.namespace, policy)
        obj = self.stage.wait_for(
            MODEL_POLICY, "churn", lambda o: (condition(o, "Ready") or {}).get("status") == "True", "Ready", 30
        )
        self.stage.say(f"modelpolicy/churn (validation gates): {status_of(obj).get('message')}")
        self.stage.note(
            "autoPromoteToStaging: a new version that passes goes to Staging by itself; "
            "productionApproval: Required: Production needs a person's approval"
        )
        gateway, _ = assets.load_all("canary/churn-deployment.yaml", self.stage.values)
        client.CustomObjectsApi(self.stage.api.api).create_namespaced_custom_object(
            *GATEWAY[:2], self.stage.namespace, GATEWAY[2], gateway
        )
        self.stage.say("gateway/models created (the sandbox's gateway serves it on a local port)")

    def step1(self) -> None:
        self.register("registry/churn-v1.yaml")
        self.approve("churn-v1", "alice@example.com", "AUC 0.89 on the October holdout")
        _, deployment = assets.load_all("canary/churn-deployment.yaml", self.stage.values)
        self.stage.api.create(MODEL_DEPLOYMENT, self.stage.namespace, deployment)
        replicas = deployment["spec"]["replicas"]
        self.stage.say(
            "modeldeployment/churn created: it serves the newest approved Production version of model churn "
            f"on {replicas} {'pod' if replicas == 1 else 'pods'}, and moves to a newer one by canary steps: "
            "25% -> analysis -> 50% -> analysis -> 100%"
        )
        self.watch.until(healthy_on("churn-v1"), "churn-v1 serving", ROLLOUT_TIMEOUT)
        self.stage.note("a first deploy goes straight to 100%: there is no stable to compare a canary with")
        self.start_traffic()
        time.sleep(2.0)
        self.watch.poll()
        self.watch._last = None  # one row with the traffic now flowing
        obj = self.watch.poll()
        if not self.watch.windows or self.watch.windows[-1][1].counts.get("1", 0) == 0:
            raise DemoFailure(f"no answers from churn-v1 through the gateway: {status_of(obj).get('message')}")

    def step2(self) -> None:
        self.register("registry/churn-v2.yaml")
        if not self.prometheus:
            self.skip("approving churn-v2 would start a canary analysed on Prometheus metrics")
            return
        self.approve("churn-v2", "bob@example.com", "AUC 0.91 beats churn-v1 on November data")
        self.stage.note("the deployment sees a newer approved Production version: its canary starts")
        self.watch.until(healthy_on("churn-v2"), "promotion of churn-v2", ROLLOUT_TIMEOUT)
        share, total = self.watch.share_at(25, "2")
        if total >= 20 and not 0.10 <= share <= 0.40:
            raise DemoFailure(f"at weight 25% churn-v2 answered {100 * share:.0f}% of {total} requests")
        self.stage.say(f"churn-v2 promoted; it answered {self.measured('2')}")

    def step3(self) -> None:
        self.register("canary/churn-v3.yaml")
        self.stage.note(
            "offline, churn-v3 looks fine (auc 0.90, within 0.02 of churn-v2) and serves fast and without "
            "errors; but it answers 'churn' for ~82% of customers (churn-v2: about half)"
        )
        if not self.prometheus:
            self.skip("approving churn-v3 would start a canary whose analysis on Prometheus metrics rolls it back")
            return
        self.approve("churn-v3", "carol@example.com", "AUC 0.90, within tolerance of churn-v2")

        def rolled_back(obj: Obj) -> bool:
            st = status_of(obj)
            if st.get("phase") == "Healthy" and st.get("stableVersion") == "churn-v3":
                raise DemoFailure("churn-v3 was promoted: its prediction shift went unnoticed")
            return st.get("phase") == "RolledBack"

        obj = self.watch.until(rolled_back, "rollback of churn-v3", ROLLOUT_TIMEOUT)
        st = status_of(obj)
        message = str(st.get("message") or "")
        if "predictions" not in message:
            raise DemoFailure(f"the rollback should name the failed metric `predictions`: {message}")
        self.stage.say(f"rolled back automatically: {message}")
        stalled = condition(obj, "Stalled") or {}
        self.stage.note(
            f"Stalled={stalled.get('status')} ({stalled.get('reason')}): status.failedVersion={st.get('failedVersion')} "
            "is never rolled out again by itself; a Warning Event RolledBack was recorded"
        )
        assert self.traffic is not None
        time.sleep(1.0)
        self.traffic.take()
        time.sleep(2.0)
        after = self.traffic.take()
        if after.total() < 10 or after.share("2") < 0.95:
            raise DemoFailure(f"after the rollback the traffic should be all churn-v2: {dict(after.counts)}")
        self.stage.say(f"traffic after the rollback: {after.share('2'):.0%} churn-v2 ({after.total()} answers)")
        self.stage.wait_for(
            MODEL_VERSION,
            "churn-v3",
            lambda o: status_of(o).get("stage") == "Archived",
            "churn-v3 archived after its rollback",
            30,
        )
        self.stage.note(
            "the registry follows: churn-v3 is Archived (reason RolledBack) and churn-v2, which serves, is "
            "Production again; the deployment keeps churn-v2, and any newer approved version rolls out as usual"
        )

    def step4(self) -> None:
        monitor = assets.load("drift/churn-drift.yaml", self.stage.values)
        self.stage.api.create(DRIFT_MONITOR, self.stage.namespace, monitor)
        spec = monitor["spec"]
        self.stage.say(
            f"driftmonitor/{MONITOR} created: each cron minute (5 s on this sandbox's fast clock) its CronJob runs "
            f"`modelops drift check` in a pod, on the last {spec['current']['window']} of the deployment's "
            "prediction log against retrain/reference.csv (customers as the traffic sends them today)"
        )
        batch = client.BatchV1Api(self.stage.api.api)
        deadline = time.monotonic() + 30
        cronjobs: list[Obj] = []
        while not cronjobs and time.monotonic() < deadline:
            found = batch.list_namespaced_cron_job(
                self.stage.namespace, label_selector=f"modelops.dev/drift-monitor={MONITOR}"
            )
            cronjobs = self.stage.plain(found)["items"]
            time.sleep(0.2)
        if not cronjobs:
            raise DemoFailure(f"the operator created no CronJob for driftmonitor/{MONITOR} within 30s")
        cj = cronjobs[0]
        pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        self.stage.note(
            f"cronjob/{cj['metadata']['name']} (schedule '{cj['spec']['schedule']}', concurrencyPolicy "
            f"{cj['spec']['concurrencyPolicy']}) runs as serviceaccount/{pod['serviceAccountName']}, which may only "
            "read and patch this monitor's status"
        )
        drift = spec["drift"]
        self.stage.say(
            f"each value below is the {drift['method'].capitalize()} distance between the reference and the checked "
            f"window, in reference standard deviations: a feature drifts at >= threshold {drift['threshold']}; the "
            f"data drifts when at least {drift['driftShare']:.0%} of the features do; "
            f"{spec['policy']['consecutiveChecks']} drifted checks in a row start a retraining "
            f"(then a cooldown of {spec['policy']['cooldown']})"
        )
        watch = DriftWatch(self.stage, MONITOR, FEATURE_NAMES)
        ticker = self.watch.poll
        obj = watch.until(lambda _: bool(watch.checks), "first drift check", 90, ticker)
        if watch.checks[0]["datasetDrift"]:
            raise DemoFailure(f"the first check flagged drift in unshifted traffic: {watch.checks[0]['drifted']}")
        assert self.traffic is not None
        self.traffic.shift = dict(SHIFT)
        shifted = ", ".join(f"{k} +{v:g} sd" for k, v in SHIFT.items())
        self.stage.say(
            f"the traffic shifts: from now on the load generator sends long-standing customers who call support "
            f"more often ({shifted}; the other features unchanged)"
        )
        obj = watch.until(lambda o: bool(status_of(o).get("activeJob")), "retraining Job", 120, ticker)
        drifted = [c for c in watch.checks if c["datasetDrift"]]
        expected = sorted(SHIFT)
        for check in drifted:
            if check["drifted"] != expected:
                raise DemoFailure(f"expected drift in exactly {expected}, a check flagged {check['drifted']}")
        if not any(c["reason"] == "Debouncing" for c in drifted):
            raise DemoFailure("the retraining started without the debounce holding a first drifted check")
        job = status_of(obj)["activeJob"]
        self.parent = status_of(self.watch.poll()).get("stableVersion")
        self.stage.say(
            f"job/{job['name']} created by the operator: `python -m modelops.examples.retrain` as "
            f"serviceaccount/{MONITOR}-retrain (may create ModelVersions, nothing else); it retrains "
            f"{job.get('parentVersion')} (what the deployment serves) and registers version {job.get('nextVersion')}"
        )
        self.stage.api.patch(DRIFT_MONITOR, self.stage.namespace, MONITOR, {"spec": {"suspend": True}})
        self.stage.note(
            "(the demo suspends the monitor's schedule now, to leave this machine's CPU to the retraining and the "
            "rollout; on a cluster the checks go on, and the 1h cooldown holds another retraining)"
        )
        name = f"churn-v{job.get('nextVersion')}"
        mv = self.stage.wait_for(
            MODEL_VERSION, name, lambda o: True, f"ModelVersion {name} from the Job", 150, tick=ticker
        )
        labels = mv["metadata"].get("labels") or {}
        spec_v = mv["spec"]
        lineage = spec_v.get("lineage") or {}
        if lineage.get("parentVersion") != self.parent:
            raise DemoFailure(f"{name} should have lineage to {self.parent}, has {lineage.get('parentVersion')}")
        self.retrained = name
        metrics = ", ".join(f"{k} {v}" for k, v in (spec_v.get("metrics") or {}).items())
        self.stage.say(
            f"modelversion/{name} registered by job/{labels.get('modelops.dev/retrain-job')} "
            f"(offline metrics on a holdout of the drifted window: {metrics})"
        )
        self.stage.note(
            f"lineage: parent {lineage.get('parentVersion')}; dataset {(lineage.get('dataset') or {}).get('uri')}; "
            f"drift report of {MONITOR}'s check at {(lineage.get('driftReport') or {}).get('checkTime')}; "
            f"training run {lineage.get('trainingRun')}"
        )
        final = self.stage.wait_for(
            DRIFT_MONITOR,
            MONITOR,
            lambda o: (status_of(o).get("lastRetrain") or {}).get("registeredVersion") == name,
            "link to the registered version",
            60,
            tick=ticker,
        )
        self.job_log(str((status_of(final).get("lastRetrain") or {}).get("name") or job["name"]))
        self.stage.say(f"driftmonitor/{MONITOR} history links the check, the Job and the version:")
        table = Table([Column("EVENT", 26), Column("FROM", 8), Column("TO", 8), Column("MESSAGE", 40)], indent=12)
        self.stage.print(table.header())
        for h in status_of(final).get("history") or []:
            if h.get("event") in (
                "DriftDetected",
                "RetrainTriggered",
                "RetrainedVersionRegistered",
                "RetrainSucceeded",
            ):
                self.stage.print(
                    table.row(h.get("event"), h.get("from") or "-", h.get("to") or "-", h.get("message") or "")
                )
        self.modelops("registry", "lineage", name)

    def job_log(self, job: str) -> None:
        """The retraining's own account (its pod's log): what it read, the labels, the fit, the holdout."""
        try:
            found = self.stage.core.list_namespaced_pod(self.stage.namespace, label_selector=f"job-name={job}")
            pods = self.stage.plain(found)["items"]
            text = self.stage.core.read_namespaced_pod_log(str(pods[0]["metadata"]["name"]), self.stage.namespace)
        except (ApiException, IndexError, KeyError):
            return
        keep = ("reference ", "current ", "labels:", "trained ", "holdout ", "  parent on the same holdout")
        lines = [line for line in str(text).splitlines() if line.startswith(keep)]
        if lines:
            self.stage.say(f"job/{job} log (excerpt):")
            for line in lines:
                self.stage.note(line.strip())

    def step5(self) -> None:
        name = self.retrained or "churn-v4"
        self.stage.say(f"{name}: the operator verifies it and checks it against modelpolicy/churn, with no person:")
        self.through_gates(name)
        mdep = self.watch.poll()
        st = status_of(mdep)
        if st.get("stableVersion") != self.parent or st.get("canaryVersion"):
            raise DemoFailure(f"the deployment should still serve {self.parent} alone: {st.get('message')}")
        self.stage.note(
            f"the deployment stays on {self.parent} meanwhile: it follows approved Production versions, "
            f"and {name} is in Staging"
        )
        if not self.prometheus:
            self.skip(f"approving {name} would start a canary analysed on Prometheus metrics")
            return
        self.stage.say(
            "modelpolicy/churn requires a person's approval for Production (productionApproval: Required). "
            "That approval is the only manual step since the traffic shifted; everything else below is the operator's:"
        )
        self.approve(name, "dana@example.com", "retrained on the shifted traffic; gates passed")
        self.watch.until(healthy_on(name), f"promotion of {name}", ROLLOUT_TIMEOUT)
        self.stage.say(f"{name} promoted; it answered {self.measured(name.rsplit('v', 1)[-1])}")

    def skip(self, why: str) -> None:
        self.skipped.append(f"step {self.step}: {why}")
        self.stage.say(f"SKIPPED without Prometheus: {why}")

    # -- the end ------------------------------------------------------------------------------

    def summary(self) -> None:
        """The registry and the deployment as they are now."""
        mdep = self.stage.get(MODEL_DEPLOYMENT, NAME) or {}
        st = status_of(mdep)
        serving = {st.get("stableVersion"): f"stable, {100 - int(st.get('canaryWeight') or 0)}%"}
        if st.get("canaryVersion"):
            serving[st["canaryVersion"]] = f"canary, {st.get('canaryWeight', 0)}%"
        table = Table(
            [
                Column("VERSION", 8),
                Column("STAGE", 10),
                Column("AUC", 6, right=True),
                Column("PARENT", 8),
                Column("REGISTERED BY", 22),
                Column("APPROVED BY", 17),
                Column("SERVES", 12),
            ]
        )
        self.stage.print(table.header())
        versions = self.stage.api.list(MODEL_VERSION, self.stage.namespace)
        for obj in sorted(versions, key=lambda o: str(o["metadata"].get("creationTimestamp"))):
            spec, vst = obj["spec"], status_of(obj)
            labels = obj["metadata"].get("labels") or {}
            job = labels.get("modelops.dev/retrain-job")
            rolled_back = obj["metadata"]["name"] == st.get("failedVersion")
            table_row = table.row(
                obj["metadata"]["name"],
                vst.get("stage") or "None",
                (spec.get("metrics") or {}).get("auc", "-"),
                (spec.get("lineage") or {}).get("parentVersion") or "-",
                "retraining Job of " + str(labels.get("modelops.dev/retrained-by")) if job else "a person (the demo)",
                (spec.get("approval") or {}).get("approvedBy") or "-",
                "rolled back" if rolled_back else serving.get(obj["metadata"]["name"], "-"),
            )
            self.stage.print(table_row)


def failure_line(story: Story | None, exc: BaseException) -> str:
    where = "setup" if story is None or story.step == 0 else f"step {story.step}/5 ({STEPS[story.step - 1]})"
    if story is not None and story.step > len(STEPS):
        where = "the summary"
    reason = str(exc) if isinstance(exc, DemoFailure) else f"{type(exc).__name__}: {exc}"
    return f"DEMO FAILED at {where}: {' '.join(reason.split())}"
