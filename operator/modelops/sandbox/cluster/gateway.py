"""The sandbox's Gateway API implementation: HTTPRoutes honoured per HTTP request on local ports."""

from __future__ import annotations

from pathlib import Path

GATEWAY_API_CRDS = Path(__file__).with_name("gateway-api-crds.yaml")
"""GatewayClass, Gateway and HTTPRoute CRDs (reduced upstream v1 standard channel); `sandbox up` installs them."""
