# Backlay images, built by compose.yaml:
#   target `server`   - `backlay serve` (REDIS_URL / DATABASE_URL point at the compose services)
#   target `loadtest` - the same code plus Locust, for the seeder, Locust master/workers, audit
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# gcc: setup.py compiles the command and event classes (Cython) at install time
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY engine engine
COPY risk risk
COPY pricing pricing
COPY persistence persistence
COPY gateway gateway
COPY loadtests loadtests
# Editable, so the compiled modules are built next to their sources in /app: /app comes first on
# PYTHONPATH, and a plain install would leave an uncompiled engine/ there ahead of them.
RUN pip install -e .
# /app is importable too, for loadtests/ (the seeder, the locustfile and the audit), which the
# wheel does not package.
ENV PYTHONPATH=/app
RUN useradd --system --uid 10001 --home-dir /app backlay

FROM base AS server
ENV BACKLAY_HOST=0.0.0.0 \
    BACKLAY_WS_PORT=8765 \
    BACKLAY_HTTP_PORT=8080
EXPOSE 8765 8080
USER backlay
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=3)"]
# exec form: `backlay serve` is PID 1 and gets SIGTERM, so it shuts down gracefully
CMD ["backlay", "serve"]

FROM base AS loadtest
RUN pip install -e ".[load]" && install -d -o backlay /reports
USER backlay
EXPOSE 8089 5557
CMD ["locust", "-f", "/app/loadtests/locustfile.py"]
