# syntax=docker/dockerfile:1
# notebook-operator container image. Build: docker build -t notebook-operator:0.1.0 .
# Without a Docker daemon: make image (buildah, on a Debian base made by mmdebstrap).
# Two stages: dependencies are installed from PyPI, pinned by constraints.txt, into a virtualenv in the
# build stage; the final stage copies only that virtualenv onto a slim Python and runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/notebook-operator
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY operator ./operator
# Wheels only: no compiler in this stage either, and the same versions as the tests ran with.
# A build machine behind a TLS proxy passes its CA bundle as the secret `pipcert` (make image does): only this
# step sees it, and no layer keeps it.
RUN --mount=type=secret,id=pipcert \
    if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi \
 && /opt/notebook-operator/bin/pip install --only-binary=:all: -c constraints.txt . \
 && /opt/notebook-operator/bin/pip uninstall -y pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="notebook-operator" \
      org.opencontainers.image.description="Cloud notebook instances (PAI-DSW, ModelArts) as Kubernetes resources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/notebook-operator/notebook-operator"
# Not "operator": Debian's base-passwd already defines that group (gid 37), and groupadd stops there.
RUN groupadd --system --gid 10001 notebook-operator \
 && useradd --system --uid 10001 --gid notebook-operator --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin notebook-operator
COPY --from=build /opt/notebook-operator /opt/notebook-operator
ENV PATH=/opt/notebook-operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["notebook-operator"]
CMD ["run", "--all-namespaces", "--log-format=json"]
