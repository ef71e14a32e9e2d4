# The worker image: `arq worker.WorkerSettings` as PID 1, as a numeric non-root user, with only
# the locked runtime dependencies. tests/deploy/test_image_env.py runs this file's build steps
# into a fresh venv and starts the worker from it, since no Docker engine runs in the test suite.
# No `# syntax=` line: BuildKit's built-in frontend reads it, so no unpinned frontend image is
# pulled at build time.

# python:3.11-slim-bookworm (CPython 3.11.16, Debian 12), pinned to the multi-platform index
# digest published on Docker Hub. A digest cannot move under a rebuild; renew it on purpose with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
# The uv release dev.py installs, so the image resolves uv.lock exactly as the tests do.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# Bytecode is compiled here because the running container's root filesystem is read-only.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies before the source: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# The project itself, installed (not editable) into the same environment: the final stage needs
# the venv alone. README.md is the package's long description, which the build reads.
COPY README.md settings.py ./
COPY jobs ./jobs
COPY worker ./worker
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
# No installer in the running image: the base's pip (and setuptools, wheel) go; uv never came.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin worker
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# An empty, root-owned directory: arq puts the working directory on sys.path.
WORKDIR /app
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# The metrics and health port (settings.metrics_port's default).
EXPOSE 9108
# Exec form: arq is PID 1 and gets SIGTERM itself, then drains for PW_SHUTDOWN_GRACE_S.
# The console is the same image with another command (k8s/components/console):
#   prospect-worker console --host 0.0.0.0 --port 8080
CMD ["arq", "worker.WorkerSettings"]
