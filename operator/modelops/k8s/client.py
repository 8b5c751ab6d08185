"""Connect to the Kubernetes API: in-cluster, or a kubeconfig; failures become one-line errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from modelops import __version__


class KubeConnectionError(Exception):
    """The kubeconfig is broken or the API server cannot be reached: a one-line, fixable error."""


def one_line(exc: object) -> str:
    return " ".join(str(exc).split())


OPERATOR_USER_AGENT = f"modelops-operator/{__version__}"
"""The operator's User-Agent: the API server names the field manager of a write without a
``fieldManager`` after it (up to the first ``/``), so the operator's fields show as
``modelops-operator`` in managedFields (not the Python client's ``OpenAPI-Generator``)."""


def load_api_client(
    kubeconfig: str | None = None,
    context: str | None = None,
    user_agent: str | None = None,
    request_timeout: float | None = None,
) -> client.ApiClient:
    """An ApiClient for ``kubeconfig`` (or $KUBECONFIG, ~/.kube/config), else the in-cluster account;
    ``user_agent`` replaces the Python client's own; ``request_timeout``: see :func:`set_request_timeout`."""
    cfg = client.Configuration()
    try:
        if kubeconfig or os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        else:
            config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError, TypeError, ValueError, yaml.YAMLError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise KubeConnectionError(f"cannot load kubeconfig {where}: {one_line(exc)}") from exc
    cfg.retries = urllib3.Retry(total=1, connect=1, read=0, backoff_factor=0.2)
    api = client.ApiClient(cfg)
    if user_agent is not None:
        api.user_agent = user_agent
    if request_timeout is not None:
        set_request_timeout(api, request_timeout)
    return api


def set_request_timeout(api: client.ApiClient, seconds: float) -> None:
    """Every request of ``api`` that sets no ``_request_timeout`` of its own waits at most ``seconds``
    for each read (and ``min(seconds, 10)`` to connect). The client's default is to wait for ever:
    one request to a server that never answers (a dead node without a FIN, a dropped route) would
    hang its caller, and an operator's handler thread with it, for good."""
    rest = api.rest_client
    send: Callable[..., Any] = rest.request
    default = (min(seconds, 10.0), seconds)

    def request(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return send(*args, _request_timeout=_request_timeout or default, **kwargs)

    rest.request = request  # type: ignore[method-assign]


def describe_unreachable(api: client.ApiClient, exc: BaseException) -> KubeConnectionError:
    reason = getattr(exc, "reason", None) or exc
    return KubeConnectionError(f"cannot reach the Kubernetes API at {api.configuration.host}: {one_line(reason)}")
