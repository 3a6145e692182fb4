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

# The venv, built with uv from registrar/uv.lock: flow-register on Prefect's client distribution
# (prefect-client), without the server the project's own venv has for its tests. uv stays behind.
FROM ${BASE} AS venv
ARG UV_VERSION=0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/flow-register UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer changes only with the lock file.
COPY pyproject.toml ./
COPY registrar/pyproject.toml registrar/uv.lock registrar/
RUN /opt/uv/bin/uv sync --project registrar --frozen --no-install-package flow-register --no-cache
COPY README.md ./
COPY schemas/ schemas/
COPY action.yml ./
COPY register/ register/
RUN /opt/uv/bin/uv sync --project registrar --frozen --no-cache
# Of AWS, the registrar calls ECR alone (sts, sso, sso-oidc and signin resolve credentials):
# botocore's models of its other 400 services are 27 MB it never reads.
RUN cd /opt/flow-register/lib/python3.*/site-packages/botocore/data && find . -mindepth 1 -maxdepth 1 -type d \
        ! -name ecr ! -name sts ! -name sso ! -name sso-oidc ! -name signin -exec rm -rf {} +

FROM ${BASE}
ENV PATH=/opt/flow-register/bin:$PATH PYTHONUNBUFFERED=1
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=docker-cli /usr/local/libexec/docker/cli-plugins/docker-buildx /usr/local/libexec/docker/cli-plugins/docker-buildx
COPY --from=venv /opt/flow-register /opt/flow-register
COPY entrypoint.py /app/entrypoint.py
RUN python -c "import register.cli, prefect; print('flow-register with prefect', prefect.__version__)" \
    && docker --version

LABEL org.opencontainers.image.title="flow-register" \
      org.opencontainers.image.description="Validate a flow manifest, build one image, register Prefect 3 deployments" \
      org.opencontainers.image.source="https://github.com/org/flow-register" \
      org.opencontainers.image.licenses="Apache-2.0"

ENTRYPOINT ["/opt/flow-register/bin/python", "/app/entrypoint.py"]
