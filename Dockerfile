# BiliPick: slim Python, CPU-only torch, non-root, state in the DATA_DIR volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data
# CJK font so /profile charts can draw Chinese tag names.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU wheel of torch first: the default index would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY bot.py settings.py ./
COPY handlers ./handlers
COPY recommender ./recommender
COPY storage ./storage
COPY jobs ./jobs
COPY bilibili ./bilibili
RUN pip install .

RUN useradd --create-home --uid 10001 bilipick && mkdir -p /data && chown bilipick /data
USER bilipick
VOLUME ["/data"]
CMD ["python", "bot.py"]
