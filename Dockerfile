# hotline's backend. docker-compose.yml builds it; the image runs the migrations, then serves the API and the
# AMI listener. Configuration comes only from HOTLINE_* environment variables (see src/hotline/settings.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
COPY dialplan ./dialplan
RUN pip install . && rm -rf /src

# A fixed uid: the dialplan volume is shared with the asterisk container, whose image creates the same
# directory with this owner (dialplan/Dockerfile).
RUN groupadd --system --gid 10001 hotline \
    && useradd --system --uid 10001 --gid hotline --home-dir /var/lib/hotline --shell /usr/sbin/nologin hotline \
    && install -d -o hotline -g hotline /var/lib/hotline /var/lib/hotline/dialplan /var/lib/hotline/recordings

USER hotline
WORKDIR /var/lib/hotline
EXPOSE 8000

ENTRYPOINT ["/bin/sh", "-c", "hotline migrate && exec hotline serve --host 0.0.0.0"]
