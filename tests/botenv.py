"""The real Application, built by bot.py, running against both doubles over HTTP."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr
from telegram.ext import Application

from bot import build_application
from jobs.services import Services
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import TelegramDouble
from tests.harness import make_services

TOKEN = "123456789:AAFakeTokenForTheDoubleOnly_abcdefghij"


@asynccontextmanager
async def running_bot(data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, **jobs):
    """Yields (application, services) with long polling running; stops everything afterwards."""
    services: Services = make_services(data_dir, bili, **jobs)
    services.settings.telegram.bot_token = SecretStr(tg.token)
    services.settings.telegram.base_url = tg.base_url
    app: Application = build_application(services.settings, services)
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app, services
    finally:  # the order run_polling uses
        await app.updater.stop()
        await app.stop()
        await app.post_stop(app)
        await app.shutdown()
        await app.post_shutdown(app)
