"""A distributed-mode worker: `python -m jobs.worker --queues sync,train,digest [--concurrency N]`.

Runs procrastinate's worker on the queues given (plus the scheduler queue, which every worker
serves: the periodic scheduler is deferred once per tick whichever workers run), with the process's
Services, a Telegram bot for digests and notices, and /healthz + /metrics when METRICS_PORT is set.
Start as many as you like, on any machine that reaches the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from jobs.queue import QUEUES, SCHEDULE_QUEUE, Runtime, build_app, ensure_queue_schema, run_worker_loops
from jobs.startup import check_stored_logins, require_shared_keys
from services import build_services
from settings import Settings, get_settings

log = logging.getLogger("bilipick.worker")

# On SIGTERM running jobs get this long to finish before they are cancelled (and retried elsewhere);
# docker-compose.yml's stop_grace_period is longer, so Docker does not SIGKILL the worker first.
SHUTDOWN_GRACE_S = 30


def build_bot(settings: Settings, services):
    """PTB's Bot with the production rate limiter: the shared pace in the database (delivery/pace.py)."""
    from telegram.constants import ParseMode
    from telegram.ext import Defaults, ExtBot

    from delivery.pace import MeteredRateLimiter
    from storage.pace import DatabasePace

    tg = settings.telegram
    if tg.bot_token is None:
        raise SystemExit("BOT_TOKEN is not set: workers send digests and notices")
    limiter = MeteredRateLimiter(tg.max_messages_per_second, max_retries=3, shared=DatabasePace(services.db))
    return ExtBot(
        tg.bot_token.get_secret_value(),
        base_url=tg.base_url,
        defaults=Defaults(parse_mode=ParseMode.HTML),
        rate_limiter=limiter,
    )


async def run_worker(settings: Settings, queues: list[str], concurrency: int) -> None:
    from jobs.metrics import MetricsServer

    if not settings.work.distributed:
        raise SystemExit("jobs.worker runs in WORK_MODE=distributed (with a PostgreSQL DATABASE_URL)")
    require_shared_keys(settings)
    services = build_services(settings)  # migrates the schema (under its own advisory lock)
    try:
        check_stored_logins(services)  # as the front does: a wrong key set refuses, it marks nobody dead
    except SystemExit:
        await services.close()
        raise
    ensure_queue_schema(services.db)
    bot = build_bot(settings, services)
    await bot.initialize()
    metrics = None
    if settings.work.metrics_port is not None:
        metrics = MetricsServer(services, settings.work.metrics_port, settings.work.metrics_listen)
        await metrics.start()
    app = build_app(settings)
    runtime = Runtime(services=services, bot=bot, train_shards=settings.work.train_shards)
    try:
        async with app.open_async():
            await run_worker_loops(
                app,
                queues=[*queues, SCHEDULE_QUEUE],
                concurrency=concurrency,
                additional_context={"runtime": runtime},
                update_heartbeat_interval=settings.work.heartbeat_s,
                stalled_worker_timeout=settings.work.stalled_after_s,
                shutdown_graceful_timeout=SHUTDOWN_GRACE_S,
            )
    finally:
        if metrics is not None:
            await metrics.stop()
        await bot.shutdown()
        await services.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--queues", default=",".join(QUEUES), help="comma-separated: " + ",".join(QUEUES))
    parser.add_argument("--concurrency", type=int, default=8, help="jobs run at once in this process")
    args = parser.parse_args(argv)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if unknown := set(queues) - set(QUEUES):
        parser.error(f"unknown queue(s): {', '.join(sorted(unknown))}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    if settings.telegram.bot_token is not None:
        from redaction import install_redaction  # the token never reaches a log line

        install_redaction(settings.telegram.bot_token.get_secret_value())
    asyncio.run(run_worker(settings, queues, args.concurrency))


if __name__ == "__main__":
    main()
