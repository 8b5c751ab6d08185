"""`modelops demo`: the whole loop on the sandbox cluster; returns the process exit code.

Exit codes: 0 the loop completed as shown; 1 a step did not behave as shown (one line names the
step and the reason); 3 Prometheus is not installed: the parts that need no Prometheus ran and
the analysed canaries were skipped, as the output says; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_PROMETHEUS = 3
EXIT_INTERRUPTED = 130
CRON_MINUTE_SECONDS = 5.0
"""One cron minute of the demo's sandbox, in real seconds: the drift CronJob runs every 5 s."""


def run_demo(keep: bool = False, directory: Path | None = None) -> int:
    from modelops.demo import view
    from modelops.sandbox.cluster.supervisor import Layout, SandboxError, start, stop

    started = time.monotonic()
    for noisy in ("modelops", "aiohttp", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = Path(directory).resolve() if directory is not None else Path(tempfile.mkdtemp(prefix="modelops-demo-"))
    layout = Layout(root / "sandbox")
    print(
        view.paragraph(
            "modelops demo: the whole loop on a local sandbox cluster (a fake Kubernetes API server, the operator, "
            "model-server and drift-check pods as real processes, real Prometheus), under live traffic. A few "
            "minutes, most of them pods starting.",
            "",
            "",
        ),
        flush=True,
    )
    try:
        state: dict[str, Any] = start(
            layout, scrape_interval=1.0, cron_minute_seconds=CRON_MINUTE_SECONDS, restart_backoff=1.0, timeout=120.0
        )
    except SandboxError as exc:
        print(f"DEMO FAILED at setup: cannot start the sandbox cluster: {exc}", flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        stop(layout)
        return EXIT_INTERRUPTED
    code = EXIT_FAILED
    try:
        code = _run(state, root, started)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        code = EXIT_INTERRUPTED
    except _Failed as exc:
        print(f"\n{exc.line}; sandbox logs in {layout.logs}", flush=True)
        code = EXIT_FAILED
    except Exception as exc:  # anything unforeseen: one line, never a traceback
        from modelops.demo.story import failure_line

        print(f"\n{failure_line(None, exc)}; sandbox logs in {layout.logs}", flush=True)
        code = EXIT_FAILED
    finally:
        if keep:
            _kept(state, layout)
        else:
            stop(layout)
            if code in (EXIT_OK, EXIT_NO_PROMETHEUS, EXIT_INTERRUPTED) and directory is None:
                shutil.rmtree(root, ignore_errors=True)
    return code


class _Failed(Exception):
    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def _run(state: dict[str, Any], root: Path, started: float) -> int:
    from kubernetes import client

    from modelops.demo import assets
    from modelops.demo.stage import Stage
    from modelops.demo.story import Story, failure_line
    from modelops.k8s.client import load_api_client
    from modelops.k8s.resources import CustomObjects

    components = state["components"]
    kubeconfig = str(state["kubeconfig"])
    api_client = load_api_client(kubeconfig)
    log_dir = root / "prediction-log"
    models_dir = root / "models"
    log_dir.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    stage = Stage(
        CustomObjects(api_client),
        client.CoreV1Api(api_client),
        kubeconfig,
        {
            "MODELOPS_EXAMPLES": str(assets.ASSETS),
            "MODELOPS_PREDICTION_LOG": log_dir.as_uri(),
            "MODELOPS_MODELS_DIR": str(models_dir),
            "MODELOPS_IMAGE": str(state["image"]),
        },
        started=started,
    )
    prometheus = components.get("prometheus") or {}
    story = Story(stage, prometheus=bool(prometheus.get("url")))
    stage.heading("Setup")
    stage.say(
        f"sandbox cluster up in {root}: API server {components['apiserver']['url']} (kubeconfig {kubeconfig}), "
        f"the operator `modelops run -A` (pid {components['operator']['pid']}), the workload runner, service proxy "
        "and gateway"
    )
    if prometheus.get("url"):
        stage.note(f"Prometheus {prometheus['url']} scrapes the operator and every model-server pod each second")
    else:
        stage.say(
            f"{prometheus.get('missing') or 'Prometheus did not start'}. The demo runs what needs no Prometheus "
            "(registry, validation gates, deployment, the drift loop and retraining) and skips the analysed "
            f"canaries, saying so; it then exits {EXIT_NO_PROMETHEUS}"
        )
    stage.note(f"manifests and model artifacts from {assets.ASSETS} (shipped in the package)")
    try:
        story.run()
        stage.heading("The registry and the deployment now")
        story.summary()
    except Exception as exc:
        raise _Failed(failure_line(story, exc)) from None
    finally:
        if story.traffic is not None:
            story.traffic.stop()
        with contextlib.suppress(Exception):
            api_client.close()
    seconds = time.monotonic() - started
    if story.skipped:
        print(
            f"\nDemo finished in {seconds:.0f}s WITHOUT Prometheus; skipped: {'; '.join(story.skipped)}. "
            f"Install it (`apt-get install prometheus`) for the whole loop. Exit code {EXIT_NO_PROMETHEUS}.",
            flush=True,
        )
        return EXIT_NO_PROMETHEUS
    print(
        f"\nThe loop closed in {seconds:.0f}s: registry -> gated canary -> automatic rollback -> drift -> "
        "retraining -> validated version -> gated canary, every step decided by the operator.",
        flush=True,
    )
    return EXIT_OK


def _kept(state: dict[str, Any], layout: Any) -> None:
    print(
        "\nThe sandbox keeps running (--keep); the load generator has stopped.\n"
        f"  export KUBECONFIG={state['kubeconfig']}\n"
        "  kubectl get mpol,mv,mdep,dm      (or: modelops registry list; modelops rollout status churn)\n"
        f"  modelops sandbox status --dir {layout.root}\n"
        f"Stop it with:  modelops sandbox down --dir {layout.root}",
        flush=True,
    )
