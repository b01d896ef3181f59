# One image for every bot: the instance is the env file mounted at /config/bot.env.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY a2a_bridge ./a2a_bridge
COPY prompts ./prompts
# The project pins its dependencies as compatible ranges in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[postgres]" \
    && useradd --create-home --uid 10001 bot \
    && mkdir -p /app/data \
    && chown bot /app/data

USER 10001
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3978\")}/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m", "bot", "--env-file", "/config/bot.env"]
