# The ClawFleet platform itself (web app, bot, provisioner in one process).
# Instances run in containers of their own, built from images/openclaw (docker runtime).
ARG BASE=python:3.11-slim
FROM ${BASE}

# Where pip finds packages when PyPI is not reachable from the build (a mirror, or a directory of
# wheels served over HTTP): --build-arg PIP_INDEX_URL=... or PIP_NO_INDEX=1 PIP_FIND_LINKS=...,
# with PIP_TRUSTED_HOST for a mirror on plain HTTP
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ARG PIP_TRUSTED_HOST

ENV PATH=/opt/clawfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLAWFLEET_DATA_DIR=/data \
    CLAWFLEET_HTTP_HOST=0.0.0.0 \
    CLAWFLEET_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY clawfleet ./clawfleet
COPY db ./db
COPY accounts ./accounts
COPY web ./web
COPY provisioner ./provisioner
COPY bot ./bot
COPY billing ./billing
COPY model_gateway ./model_gateway
COPY metrics ./metrics
COPY admin ./admin
# a virtual environment of its own: the base's Python packages stay untouched
RUN python -m venv /opt/clawfleet && pip install . \
    && useradd --uid 10001 --create-home clawfleet && mkdir /data && chown clawfleet /data

USER clawfleet
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["clawfleet", "serve"]
