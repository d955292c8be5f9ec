# `etl watch` in a container: inbox and outbox are volumes, the secret a Docker secret
# (/run/secrets/connect_client_secret, README "Secrets"), never an image layer or a build arg.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY etl ./etl
# Installed, then the sources removed: the image holds the package once, in site-packages.
RUN pip install . && rm -rf /src

# A fixed uid, so that a bind-mounted inbox and a secret file can be given to it
# (chown 10001, chmod 600) on the host.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin etl \
    && mkdir -p /data/inbox /data/outbox \
    && chown -R etl:etl /data
USER etl
WORKDIR /data
VOLUME /data/inbox /data/outbox

ENTRYPOINT ["etl"]
# Connect settings come from CONNECT_* variables, /run/secrets, or --config /data/etl.toml.
CMD ["watch", "--inbox", "/data/inbox", "--outbox", "/data/outbox"]
# `etl health` reads the watcher's heartbeat: a stalled watcher turns the container unhealthy.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
    CMD etl health --outbox /data/outbox
