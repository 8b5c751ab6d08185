"""modelops: Kubernetes-native model registry, gated canary delivery and drift monitoring."""

__version__ = "0.1.0"
GROUP = "modelops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
