"""Shared pytest fixtures. Each team adds only its own fixtures here (keep them minimal)."""

from __future__ import annotations

import pytest


@pytest.fixture
async def bilibili_double():
    """A running bilibili double (real aiohttp server on 127.0.0.1) with the 708-video catalogue."""
    from tests.doubles.bilibili import BilibiliDouble

    async with BilibiliDouble(slow_s=2.0) as double:
        yield double


@pytest.fixture
async def bili_client(bilibili_double):
    """A BilibiliClient pointed at `bilibili_double`, with short timeouts/backoffs and no rate cap."""
    from bilibili import BilibiliClient

    settings = bilibili_double.settings(
        timeout_s=0.5,
        retries=2,
        backoff_base_s=0.01,
        risk_pause_base_s=0.3,
        risk_pause_max_s=2.0,
        max_requests_per_second=0,
        qr_poll_interval_s=0.01,
    )
    async with BilibiliClient(settings, correspond_public_key=bilibili_double.correspond_public_pem) as client:
        yield client


@pytest.fixture
async def tg():
    """A running Telegram Bot API double (real aiohttp server on 127.0.0.1) for the test bot token."""
    from tests.botenv import TOKEN
    from tests.doubles.telegram import TelegramDouble

    async with TelegramDouble(token=TOKEN) as double:
        yield double
