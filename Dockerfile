# The ClawFleet platform itself (web app, bot, provisioner in one process).
# Instances run in containers of their own, built from images/openclaw (docker runtime).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLAWFLEET_DATA_DIR=/data \
    CLAWFLEET_HTTP_HOST=0.0.0.0 \
    CLAWFLEET_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY clawfleet ./clawfleet
COPY db ./db
COPY web ./web
COPY provisioner ./provisioner
COPY bot ./bot
COPY billing ./billing
RUN pip install . && useradd --uid 10001 --create-home clawfleet && mkdir /data && chown clawfleet /data

USER clawfleet
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["clawfleet", "serve"]
