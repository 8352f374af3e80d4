# The vigil service image: `docker build -t vigil .`, or `docker compose up` (compose.yaml).
# Two stages: the builder installs vigil into a venv from the lock file CI tests
# (requirements/dev.lock, as constraints: the same versions, only the runtime packages); the
# runtime stage copies that venv alone, no compilers, no pip cache, and runs as a user of its own.
# .ci/run runs the builder's install command in a fresh venv, so a lock that no longer installs
# fails CI, not this build.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/vigil/bin:$PATH
RUN python -m venv /opt/vigil
WORKDIR /src
# What the install reads: pyproject.toml, its readme and licence files, the lock, the source.
COPY pyproject.toml README.md LICENSE ./
COPY requirements/ requirements/
COPY src/ src/
RUN pip install -c requirements/dev.lock ".[postgres]"
COPY docker/entrypoint.sh /opt/vigil/bin/vigil-entrypoint
RUN chmod 0755 /opt/vigil/bin/vigil-entrypoint


FROM python:3.11-slim
# libgomp1: LightGBM's wheel links the system's OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid and gid (10001), so volumes and a Kubernetes runAsUser agree with the image.
RUN groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil --no-create-home \
       --shell /usr/sbin/nologin vigil \
    && install -d -o vigil -g vigil -m 0750 /var/lib/vigil
COPY --from=builder /opt/vigil /opt/vigil
# VIGIL_API__HOST: in a container vigil listens on every interface (the default, 127.0.0.1,
# would be reachable from inside the container only). The database defaults to SQLite in the
# working directory, /var/lib/vigil (the volume to keep); compose.yaml points it at PostgreSQL.
ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIGIL_API__HOST=0.0.0.0 \
    VIGIL_API__PORT=8000
# Numeric, so a runtime that checks "not root" (Kubernetes runAsNonRoot) can tell.
USER 10001:10001
WORKDIR /var/lib/vigil
EXPOSE 8000
# No curl in the slim image: the venv's Python asks GET /health.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('VIGIL_API__PORT', '8000'), timeout=2)"]
ENTRYPOINT ["/opt/vigil/bin/vigil-entrypoint"]
CMD ["serve"]
