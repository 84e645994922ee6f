# BiliPick: slim Python, CPU-only torch, non-root, state in the DATA_DIR volume (embedded mode) or in
# PostgreSQL (distributed mode: WORK_MODE=distributed; see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data METRICS_PORT=9090
# CJK font so /profile charts can draw Chinese tag names.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies (with the postgres extra) from pyproject.toml at the versions CI passed with
# (requirements.lock, as `make` installs them); torch 2.13.0+cpu from PyTorch's CPU index (the default
# index would pull a multi-GB CUDA build). This layer is rebuilt only when the dependencies change.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
    && pip install -c requirements.lock --extra-index-url https://download.pytorch.org/whl/cpu \
       -r /tmp/requirements.txt
# The code last; --no-deps: everything it needs is in the layer above.
COPY README.md LICENSE bot.py settings.py services.py redaction.py ./
COPY handlers ./handlers
COPY delivery ./delivery
COPY recommender ./recommender
COPY storage ./storage
COPY jobs ./jobs
COPY bilibili ./bilibili
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 bilipick && mkdir -p /data && chown bilipick /data
USER bilipick
VOLUME ["/data"]
EXPOSE 9090
# /healthz answers 200 while the process runs and its database answers (front and workers alike).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"METRICS_PORT\"]}/healthz', timeout=4)"
CMD ["python", "bot.py"]
