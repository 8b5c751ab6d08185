# syntax=docker/dockerfile:1
#
# The modelops image: the operator (`modelops run`, the default), the model server
# (`modelops serve ...`) and the drift job (`modelops drift check ...`).
#
#   docker build -t ghcr.io/modelops/modelops:0.1.0 .
#
# Base image: Docker Hub's python:3.11.13-slim-bookworm, pinned by digest (the multi-arch index).
# To move it: `docker buildx imagetools inspect python:3.11-slim-bookworm` and replace both the
# tag and the digest in PYTHON_IMAGE.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# ---- builder: the modelops wheel and the wheels of all its runtime dependencies ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels ".[serve,drift]"

# ---- runtime: a venv with the wheel and its serve/drift extras, nothing else ----
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="modelops" \
      org.opencontainers.image.description="Kubernetes-native MLOps operator, model server and drift job" \
      org.opencontainers.image.source="https://github.com/modelops/modelops" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp

# The user the chart runs as (runAsUser/runAsGroup 65532); named, so getpass and friends work.
RUN groupadd --system --gid 65532 modelops \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin modelops

# Offline install from the builder's wheels: the same versions the builder resolved.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links=/wheels "modelops[serve,drift]==${VERSION}" \
    && /opt/venv/bin/modelops --version

USER 65532:65532
WORKDIR /tmp

# 8081: health (/healthz); 8083: operator metrics (`modelops run`'s defaults). The model server's
# ports (8080, metrics 8082) are set per ModelDeployment.
EXPOSE 8081 8083

ENTRYPOINT ["modelops"]
CMD ["run", "--all-namespaces"]
