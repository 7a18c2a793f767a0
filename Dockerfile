# syntax=docker/dockerfile:1
# One image per PawGle mesh service, all from this file. The build context is the repository root, so
# libs/common is in reach; SERVICE names the service and is required:
#   docker build --build-arg SERVICE=auth -t pawgle/auth .
# SERVICE is one of: auth pets reports chat embeddings matcher notifier gateway.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
# Before anything is copied: without this, a missing SERVICE would copy every service and fail later on an
# obscure pip error, and a misspelt one on "services/<typo>: not found".
RUN case "${SERVICE}" in \
      auth|pets|reports|chat|embeddings|matcher|notifier|gateway) ;; \
      "") echo "SERVICE is required: docker build --build-arg SERVICE=<auth|pets|reports|chat|embeddings|matcher|notifier|gateway> ." >&2; exit 1 ;; \
      *) echo "SERVICE=${SERVICE} is not a PawGle service: use one of auth pets reports chat embeddings matcher notifier gateway" >&2; exit 1 ;; \
    esac
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only the shared library and this one service: each image carries its own code and its own dependencies.
COPY libs/common /src/libs/common
COPY services/${SERVICE} /src/services/${SERVICE}
# Both paths in one call, so pip satisfies the service's "pawgle-common" requirement with the local copy.
# The download cache lives in a BuildKit cache mount: rebuilds after a code change skip the downloads.
RUN --mount=type=cache,target=/root/.cache/pip pip install /src/libs/common /src/services/${SERVICE}

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="pawgle-${SERVICE}" \
      org.opencontainers.image.description="PawGle mesh: the ${SERVICE} service"
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 pawgle \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin pawgle \
    && mkdir -p /var/lib/pawgle \
    && chown 10001:10001 /var/lib/pawgle
COPY --from=build /opt/venv /opt/venv
# An exec-form CMD cannot expand build args: the service's name travels as PAWGLE_SERVICE, which pawgle-serve
# (libs/common) and the HEALTHCHECK read at run time. pawgle-serve passes the two UVICORN_* settings on to
# uvicorn: no plain-text access log (the service's JSON logs, metrics and traces cover requests, without query
# strings in log lines), and open connections get 20 s to finish on SIGTERM, inside Kubernetes' 30 s grace
# period.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PAWGLE_SERVICE=${SERVICE} \
    PAWGLE_HOST=0.0.0.0 \
    PAWGLE_LISTEN_PORT=8080 \
    PAWGLE_DATA_DIR=/var/lib/pawgle \
    UVICORN_ACCESS_LOG=false \
    UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=20
WORKDIR /var/lib/pawgle
USER 10001:10001
EXPOSE 8080
# The container's health is liveness, as in the Kubernetes livenessProbe, not readiness. A service's /readyz
# also asks its database and the bus: a broker or database blip would turn every container unhealthy at once,
# and whatever acts on that (Swarm, an autoheal, compose's depends_on) would restart or hold back processes
# that reconnect by themselves; its /healthz says the process answers. The gateway is the other way round:
# its /healthz asks every service behind it (one slow service would condemn the gateway), its /readyz is the
# gateway process itself (its pool is open, services/gateway/README.md). Hence /readyz for the gateway only.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; path = '/readyz' if os.environ['PAWGLE_SERVICE'] == 'gateway' else '/healthz'; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PAWGLE_LISTEN_PORT', '8080') + path, timeout=3)"]
CMD ["pawgle-serve"]
