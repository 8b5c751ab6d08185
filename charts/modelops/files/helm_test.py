"""`helm test`: the operator answers /healthz and the API server serves the modelops kinds.

Run by templates/tests/test-job.yaml as `python -c <this file> --namespace ... --selector ...
--resource modelversions ...` in the operator's own image, with nothing but the standard library
and the pod's ServiceAccount token (no kubectl). Exit status 0 when every check passes; each
check prints one line.
"""

import argparse
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
GROUP_VERSION = "modelops.dev/v1alpha1"


def in_cluster_api_url():
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"https://{host}:{port}"


class Api:
    def __init__(self, url, token_file, ca_file):
        self.url = url.rstrip("/")
        with open(token_file, encoding="utf-8") as f:
            self.token = f.read().strip()
        self.context = ssl.create_default_context(cafile=ca_file) if self.url.startswith("https:") else None

    def get(self, path, **query):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            return json.load(response)


def check_crds_served(api, namespace, resources):
    listed = {r["name"] for r in api.get(f"/apis/{GROUP_VERSION}").get("resources", [])}
    missing = sorted(set(resources) - listed)
    if missing:
        raise RuntimeError(f"the API server does not serve {GROUP_VERSION} {', '.join(missing)}")
    for resource in resources:
        api.get(f"/apis/{GROUP_VERSION}/namespaces/{namespace}/{resource}", limit="1")
    print(f"ok: {GROUP_VERSION} serves {', '.join(resources)} (listed in namespace {namespace})")


def ready(pod):
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def check_operator_healthy(api, namespace, selector, port):
    pods = api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector).get("items", [])
    running = [p for p in pods if ready(p) and (p.get("status") or {}).get("podIP")]
    if not running:
        raise RuntimeError(f"no ready operator pod in namespace {namespace} (selector {selector})")
    for pod in running:
        ip = pod["status"]["podIP"]
        host = f"[{ip}]" if ":" in ip else ip
        url = f"http://{host}:{port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status = response.status
        except OSError as exc:  # refused, timed out, or an HTTP error status
            raise RuntimeError(f"operator pod {pod['metadata']['name']}: {url}: {exc}") from exc
        if status != 200:
            raise RuntimeError(f"operator pod {pod['metadata']['name']}: {url} answered {status}")
        print(f"ok: operator pod {pod['metadata']['name']} answers {url} with 200")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True, help="the release namespace")
    parser.add_argument("--selector", required=True, help="label selector of the operator pods")
    parser.add_argument("--health-port", type=int, required=True)
    parser.add_argument("--resource", action="append", required=True, help="a plural of the group; repeat")
    parser.add_argument("--api-url", default=None, help="default: the in-cluster API server")
    parser.add_argument("--token-file", default=f"{SA_DIR}/token")
    parser.add_argument("--ca-file", default=f"{SA_DIR}/ca.crt")
    args = parser.parse_args(argv)
    api = Api(args.api_url or in_cluster_api_url(), args.token_file, args.ca_file)
    failed = 0
    for check in (
        lambda: check_crds_served(api, args.namespace, args.resource),
        lambda: check_operator_healthy(api, args.namespace, args.selector, args.health_port),
    ):
        try:
            check()
        except Exception as exc:  # every failure is reported, then the exit status says it
            print(f"FAILED: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
