# The registrar image: flow-register with its locked dependencies, the Docker CLI (it builds and
# pushes the flows' image through the runner's engine), and entrypoint.py.
#
# Released per version as ghcr.io/org/flow-register:vX.Y.Z (and :vX); action.yml runs that image,
# and it works on its own as a Docker action: `uses: docker://ghcr.io/org/flow-register:v1`.
#
#   docker build -t flow-register .                   # as the release workflow does
#   docker build --build-arg BASE=... --build-arg DOCKER_CLI=... -t flow-register .
#                                                     # with mirrors of the two public images
ARG BASE=python:3.11-slim-bookworm
ARG DOCKER_CLI=docker:28-cli

FROM ${DOCKER_CLI} AS docker-cli

FROM ${BASE}
ARG UV_VERSION=0.9.7
ENV UV_PROJECT_ENVIRONMENT=/opt/flow-register \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/flow-register/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=docker-cli /usr/local/libexec/docker/cli-plugins/docker-buildx /usr/local/libexec/docker/cli-plugins/docker-buildx

WORKDIR /opt/flow-register-src
# Dependencies first, exactly as uv.lock pins them: this layer changes only with the lock.
COPY pyproject.toml uv.lock README.md ./
RUN python3 -m pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
    && uv sync --frozen --no-dev --no-install-project --no-cache
COPY schemas/ schemas/
COPY register/ register/
COPY entrypoint.py ./
RUN uv sync --frozen --no-dev --no-editable --no-cache \
    && python3 -m pip uninstall --yes --quiet uv \
    && /opt/flow-register/bin/python -c "import register.cli, prefect; print('flow-register', prefect.__version__)"

LABEL org.opencontainers.image.title="flow-register" \
      org.opencontainers.image.description="Validate a flow manifest, build one image, register Prefect 3 deployments" \
      org.opencontainers.image.source="https://github.com/org/flow-register" \
      org.opencontainers.image.licenses="Apache-2.0"

ENTRYPOINT ["/opt/flow-register/bin/python", "/opt/flow-register-src/entrypoint.py"]
