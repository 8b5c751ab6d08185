"""The live tables: a rollout as it moves (with each analysis measurement), drift checks as they land.

Both poll the object's status a few times a second and print a row only when something a person
would notice changed; the rows are the operator's own status, nothing is inferred.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelops.demo import view
from modelops.demo.stage import DemoFailure, Stage, condition, status_of
from modelops.demo.traffic import Tally, Traffic
from modelops.demo.view import Column, Table
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT

Obj = dict[str, Any]

ROLLOUT = Table(
    [
        Column("TIME", 7, right=True),
        Column("PHASE", 11),
        Column("STABLE, READY", 13),
        Column("CANARY, READY", 13),
        Column("WEIGHT", 6, right=True),
        Column("STEP", 14),
        Column("ANSWERED BY (SINCE THE ROW ABOVE)", 30),
    ]
)
ANALYSIS = Table(
    [
        Column("METRIC", 11),
        Column("MEASURES", 21),
        Column("CANARY", 8, right=True),
        Column("STABLE", 8, right=True),
        Column("THRESHOLD", 11),
        Column("SAMPLES", 7, right=True),
        Column("RESULT", 12),
    ],
    indent=12,
)
RESULTS = {"Successful": "ok", "Failed": "FAILED", "Inconclusive": "inconclusive", "Error": "error"}


def _track(st: Obj, track: str) -> str:
    t = (st.get("tracks") or {}).get(track) or {}
    version = t.get("version") if track == "stable" else st.get("canaryVersion")
    if not version and not t.get("replicas"):
        return "-"
    return f"{version or '-'} {t.get('readyReplicas', 0)}/{t.get('replicas', 0)}"


class RolloutWatch:
    """Prints the ModelDeployment's rollout as a table, one row per visible change."""

    def __init__(self, stage: Stage, name: str, traffic: Traffic | None) -> None:
        self.stage = stage
        self.name = name
        self.traffic = traffic
        self.windows: list[tuple[int, Tally]] = []
        """(canary weight, the answers counted while that weight held), one per printed row."""
        self._last: tuple[Any, ...] | None = None
        self._weight = 0
        self._header = False
        self._runs: dict[str, int] = {}
        self._measured: set[tuple[str, str, str]] = set()
        self._verdicts: set[str] = set()

    def _answers(self) -> str:
        if self.traffic is None:
            return "(no traffic yet)"
        tally = self.traffic.take()
        self.windows.append((self._weight, tally))
        return view.split(tally.counts)

    def poll(self) -> Obj:
        obj = self.stage.api.get(MODEL_DEPLOYMENT, self.stage.namespace, self.name)
        st = status_of(obj)
        steps = (((obj.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or []
        step = view.step_label(st.get("currentStepIndex"), steps)
        key = (st.get("phase"), _track(st, "stable"), _track(st, "canary"), st.get("canaryWeight", 0), step)
        if key != self._last:
            if not self._header:
                self.stage.print(ROLLOUT.header())
                self._header = True
            answers = self._answers()
            self._weight = int(st.get("canaryWeight") or 0)
            self.stage.print(
                ROLLOUT.row(
                    view.seconds(self.stage.elapsed),
                    st.get("phase") or "Pending",
                    key[1],
                    key[2],
                    f"{st.get('canaryWeight', 0)}%",
                    step,
                    answers,
                )
            )
            self._last = key
        self._analysis(obj, steps)
        return obj

    def _analysis(self, obj: Obj, steps: Sequence[Mapping[str, Any]]) -> None:
        metrics: dict[str, Obj] = {}
        for s in steps:
            for m in (s.get("analysis") or {}).get("metrics") or []:
                metrics[str(m.get("name"))] = m
        for run in status_of(obj).get("analysisRuns") or []:
            run_key = f"{run.get('startedAt')}/{run.get('stepIndex')}"
            fresh = [
                m
                for m in run.get("measurements") or []
                if (run_key, str(m.get("name")), str(m.get("time"))) not in self._measured
            ]
            if fresh and run_key not in self._runs:
                self._runs[run_key] = len(self._runs)
                index = int(run.get("stepIndex") or 0)
                weight = max((int(s["setWeight"]) for s in steps[:index] if "setWeight" in s), default=0)
                count = max((int(m.get("count", 1)) for m in metrics.values()), default=1)
                interval = next((str(m.get("interval")) for m in metrics.values()), "?")
                self.stage.print(
                    view.paragraph(
                        f"analysis of {run.get('version')} at weight {weight}% "
                        f"(step {index + 1}/{len(steps)}): every metric {count} times, {interval} apart, "
                        "queried from Prometheus",
                        " " * 10,
                        " " * 12,
                    )
                )
                self.stage.print(ANALYSIS.header())
                self._header = False  # the rollout's columns again before its next row
            for m in fresh:
                self._measured.add((run_key, str(m.get("name")), str(m.get("time"))))
                spec = metrics.get(str(m.get("name")), {})
                kind = str(spec.get("kind", ""))
                self.stage.print(
                    ANALYSIS.row(
                        m.get("name"),
                        view.METRIC_KINDS.get(kind, kind),
                        view.metric_value(kind, m.get("value")),
                        view.metric_value(kind, m.get("stableValue")),
                        view.metric_limit(spec),
                        m.get("samples") if m.get("samples") is not None else "-",
                        RESULTS.get(str(m.get("phase")), str(m.get("phase"))),
                    )
                )
            if run.get("phase") in ("Successful", "Failed", "Inconclusive") and run_key not in self._verdicts:
                if run_key in self._runs:
                    verdict = "passed" if run["phase"] == "Successful" else run["phase"].upper()
                    self.stage.print(view.paragraph(f"analysis {verdict}", " " * 10, " " * 12))
                self._verdicts.add(run_key)
                self._header = False  # the rollout's columns again before its next row

    def until(self, done: Callable[[Obj], bool], what: str, timeout: float) -> Obj:
        deadline = time.monotonic() + timeout
        obj: Obj = {}
        while time.monotonic() < deadline:
            obj = self.poll()
            if done(obj):
                return obj
            time.sleep(0.25)
        st = status_of(obj)
        raise DemoFailure(
            f"modeldeployment/{self.name}: no {what} within {timeout:.0f}s "
            f"(phase {st.get('phase')}: {st.get('message')})"
        )

    def share_at(self, weight: int, version: str) -> tuple[float, int]:
        """The share of answers from ``version`` ("2") while the canary weight was ``weight``, and their count."""
        tallies = [t for w, t in self.windows if w == weight]
        total = sum(t.total() for t in tallies)
        return (sum(t.counts[version] for t in tallies) / total if total else 0.0), total


def healthy_on(version: str) -> Callable[[Obj], bool]:
    def done(obj: Obj) -> bool:
        st = status_of(obj)
        if st.get("failedVersion") == version:
            raise DemoFailure(f"{version} was rolled back: {st.get('message')}")
        mine = version in (st.get("canaryVersion"), st.get("stableVersion"))
        if mine and st.get("phase") in ("Degraded", "Paused"):
            raise DemoFailure(f"the rollout of {version} is {st.get('phase')}: {st.get('message')}")
        return bool(
            st.get("phase") == "Healthy"
            and st.get("stableVersion") == version
            and st.get("observedGeneration") == obj["metadata"]["generation"]
        )

    return done


class DriftWatch:
    """Prints each drift check the operator has acted on: per-feature distances and what it did."""

    def __init__(self, stage: Stage, name: str, features: Sequence[str]) -> None:
        self.stage = stage
        self.name = name
        self.features = list(features)
        self.table = Table(
            [
                Column("TIME", 7, right=True),
                Column("ROWS", 5, right=True),
                *(Column(f, max(len(f), 11)) for f in self.features),
                Column("DRIFTED", 7),
                Column("WHAT THE MONITOR DID", 16),
            ]
        )
        self.checks: list[Obj] = []
        """Each evaluated check: its time, drifted feature names, dataset drift, the condition's reason."""
        self._printed: set[str] = set()
        self._header = False

    def poll(self) -> Obj:
        obj = self.stage.api.get(DRIFT_MONITOR, self.stage.namespace, self.name)
        st = status_of(obj)
        result = st.get("lastResult") or {}
        at = str(st.get("lastCheckTime") or "")
        if not at or at in self._printed or st.get("evaluatedCheckTime") != st.get("lastCheckTime"):
            return obj
        self._printed.add(at)
        by_name = {f.get("name"): f for f in result.get("features") or []}
        cells = []
        for f in self.features:
            r = by_name.get(f) or {}
            cells.append(f"{view.number(r.get('statistic'))}{' DRIFT' if r.get('drifted') else ''}")
        rows = next((int(r.get("nCurrent") or 0) for r in by_name.values()), 0)
        drifted = sorted(n for n, r in by_name.items() if r.get("drifted"))
        reason = (condition(obj, "DriftDetected") or {}).get("reason") or ""
        needed = int((((obj.get("spec") or {}).get("policy") or {}).get("consecutiveChecks")) or 1)
        in_a_row = int(st.get("consecutiveDrifted") or 0)
        did = {
            "NoDrift": "nothing: no drift",
            "Debouncing": f"held: {in_a_row} of {needed}",
            "RetrainTriggered": f"Job created: {in_a_row} of {needed}",
            "CoolingDown": "held: cooldown",
            "RetrainInProgress": "held: Job running",
        }.get(reason, reason or "-")
        if not self._header:
            self.stage.print(self.table.header())
            self._header = True
        self.stage.print(
            self.table.row(
                view.seconds(self.stage.elapsed),
                rows,
                *cells,
                f"{len(drifted)} of {len(by_name)}",
                did,
            )
        )
        self.checks.append(
            {"time": at, "drifted": drifted, "datasetDrift": bool(result.get("datasetDrift")), "reason": reason}
        )
        return obj

    def until(self, done: Callable[[Obj], bool], what: str, timeout: float, tick: Callable[[], object]) -> Obj:
        deadline = time.monotonic() + timeout
        obj: Obj = {}
        while time.monotonic() < deadline:
            obj = self.poll()
            if done(obj):
                return obj
            tick()
            time.sleep(0.25)
        st = status_of(obj)
        ready = condition(obj, "Ready") or {}
        raise DemoFailure(
            f"driftmonitor/{self.name}: no {what} within {timeout:.0f}s "
            f"(phase {st.get('phase')}: {ready.get('message') or st.get('message')})"
        )
