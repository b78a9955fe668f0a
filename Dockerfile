# The roster_pipeline image: the project and Dagster in a virtual environment at /opt/venv. By default it serves the
# code location over gRPC on port 3030 (the user-code server of deploy/docker-compose.yaml and of the Helm chart's
# user deployment); the same image runs the webserver and the daemon in docker compose.
#
#   docker build -t roster-pipeline:local .
#
# Nothing secret goes into the image: credentials reach the containers as environment variables at run time.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/src
COPY pyproject.toml README.md ./
COPY roster_pipeline ./roster_pipeline
# The README's install (`pip install -e '.[dev]'`, what `make` runs), made for an image: not editable, no dev
# tools. The `deploy` extra adds dagster-postgres (the instance's storage, deploy/dagster.yaml) and dagster-k8s
# (the Helm chart's K8sRunLauncher launches runs from this image); both are released in step with Dagster 1.13.
RUN pip install --upgrade pip \
    && pip install ".[deploy]"

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    ROSTER_DATA_DIR=/var/lib/roster
# A user of its own; DuckDB installs the roster's extensions under its home on first use.
RUN useradd --create-home --uid 10001 roster \
    && mkdir -p /opt/dagster/dagster_home /opt/dagster/logs /var/lib/roster \
    && chown -R roster:roster /opt/dagster /var/lib/roster
USER roster
WORKDIR /opt/dagster
EXPOSE 3030
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", "roster_pipeline.definitions"]
