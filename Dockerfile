# syntax=docker/dockerfile:1
# The service image for KubeRay: this project's wheel on Ray's own image, every dependency at the
# version constraints.txt locks. Build from the repository root:
#   docker build -t ghcr.io/example/ai-agents:0.1.0 .
# The tag must be the package version (pyproject.toml): `ai-agents kuberay render` puts
# <image.repository>:<that version> into the manifests unless values set image.tag.
#
# Base: Ray's image with the Python we run on. An untagged rayproject/ray:2.60.0 is Python 3.9;
# its Ray must equal the Ray pinned in pyproject.toml (the Serve config is checked against it).
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311

# --- builder: the project's wheel and wheels of every locked dependency --------------------
FROM ${RAY_IMAGE} AS builder
# Made by the image's user (1000), so the build can write build/ and *.egg-info in it.
RUN mkdir -p /home/ray/src
WORKDIR /home/ray/src
COPY --chown=1000:100 pyproject.toml README.md constraints.txt ./
COPY --chown=1000:100 actors/ actors/
COPY --chown=1000:100 cli/ cli/
COPY --chown=1000:100 core/ core/
COPY --chown=1000:100 db/ db/
COPY --chown=1000:100 kuberay/ kuberay/
COPY --chown=1000:100 local_stack/ local_stack/
COPY --chown=1000:100 pipeline/ pipeline/
COPY --chown=1000:100 scripts/ scripts/
COPY --chown=1000:100 serve_app/ serve_app/
COPY --chown=1000:100 simulators/ simulators/
# Anything without a binary wheel is compiled here, so the final stage needs no compiler. Only
# the wheel's own requirements (no extras) are built: that is all the image installs.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /home/ray/dist . \
 && pip wheel --no-cache-dir --wheel-dir /home/ray/wheels -c constraints.txt \
        /home/ray/dist/ai_agents-*.whl

# --- final: install from the wheels only, no index, no build tools ------------------------
FROM ${RAY_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/ai-agents
LABEL org.opencontainers.image.title="ai-agents" \
      org.opencontainers.image.description="Multi-tenant ServiceDesk Plus ticket enhancement on Ray Serve" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}#readme" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary" \
      org.opencontainers.image.vendor="AI Agents team" \
      org.opencontainers.image.base.name="rayproject/ray:2.60.0-py311"

# --no-index: only the wheels built above, each at its locked version. They are bind-mounted
# from the builder for this one step (BuildKit), never copied into a layer of the image: a
# COPY followed by `rm` would still ship them in the COPY's layer. The project's dependencies
# only: the `local` extra (the embedded PostgreSQL, Kubernetes' schemas) is not installed.
RUN --mount=type=bind,from=builder,source=/home/ray/wheels,target=/tmp/wheels \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --no-index --find-links /tmp/wheels -c /tmp/constraints.txt \
        "ai-agents==${VERSION}" \
 && ai-agents --version

# The base image lets its `ray` user sudo without a password; the service needs no root at all.
USER 0
# A fixed path for the HAProxy launcher the KubeRay manifests name (RAY_SERVE_HAPROXY_BINARY_PATH).
RUN sed -i '/^ray ALL=NOPASSWD: ALL$/d' /etc/sudoers \
 && ln -s "$(command -v ai-agents-haproxy)" /usr/local/bin/ai-agents-haproxy
# Numeric, so Kubernetes' runAsNonRoot can verify it (ray, group users in the base image).
USER 1000:100
WORKDIR /home/ray
ENV PYTHONUNBUFFERED=1
EXPOSE 8000 8265 6379 8080
