"""Built-in kinds: the validation an operator's children meet on a real cluster."""

from __future__ import annotations

from typing import Any

from tests.integration.sandbox.conftest import Client

DEP = "/apis/apps/v1/namespaces/default/deployments"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
CM = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"


def deployment(labels: dict[str, str] | None = None, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"} if labels is None else labels},
                "spec": {"containers": [{"name": "server", "image": "img:1", **container}]},
            },
        },
    }


async def _causes(http: Client, method: str, path: str, body: Any, **kw: Any) -> list[tuple[str, str]]:
    status, out = await http.request(method, path, body, **kw)
    assert status == 422, out
    return [(c["field"], c["message"]) for c in out["details"]["causes"]]


async def test_workload_selector_must_match_template_labels(http: Client) -> None:
    causes = await _causes(http, "POST", DEP, deployment(labels={"app": "other"}))
    assert causes == [
        ("spec.template.metadata.labels", 'Invalid value: {"app":"other"}: `selector` does not match template `labels`')
    ]
    body = deployment()
    del body["spec"]["selector"]
    assert await _causes(http, "POST", DEP, body) == [("spec.selector", "Required value")]


async def test_containers_need_a_name_and_an_image(http: Client) -> None:
    causes = await _causes(http, "POST", DEP, deployment(image="", ports=[{"containerPort": 70000}]))
    assert [f for f, _ in causes] == [
        "spec.template.spec.containers[0].image",
        "spec.template.spec.containers[0].ports[0].containerPort",
    ]
    body = deployment()
    body["spec"]["template"]["spec"]["containers"] = []
    assert await _causes(http, "POST", DEP, body) == [("spec.template.spec.containers", "Required value")]


async def test_immutable_fields_on_update(http: Client) -> None:
    await http.ok("POST", DEP, deployment())
    patch = {
        "spec": {"selector": {"matchLabels": {"app": "web2"}}, "template": {"metadata": {"labels": {"app": "web2"}}}}
    }
    causes = await _causes(http, "PATCH", f"{DEP}/web", patch, ctype=MERGE)
    assert causes == [("spec.selector", 'Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable')]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "t:1"}]}}},
    }
    await http.ok("POST", JOBS, job)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t:2"}]}}}}
    assert [f for f, _ in await _causes(http, "PATCH", f"{JOBS}/train", patch, ctype=MERGE)] == ["spec.template"]
    await http.ok("POST", CM, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True})
    causes = await _causes(http, "PATCH", f"{CM}/frozen", {"data": {"a": "2"}}, ctype=MERGE)
    assert causes == [("data", "Forbidden: field is immutable when `immutable` is set")]


async def test_job_selector_must_be_generated(http: Client) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "t", "image": "t"}]}},
        },
    }
    assert [f for f, _ in await _causes(http, "POST", JOBS, job)] == ["spec.selector"]
    job["spec"]["manualSelector"] = True
    await http.ok("POST", JOBS, job)
