"""The daily digest: claimed once per user and local date, resumed after a crash, paced for Telegram."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram.error import TelegramError
from telegram.ext import ExtBot

from delivery.digest import header_text, send_compact, send_note
from delivery.i18n import t
from delivery.outcome import chat_gone
from delivery.send import send_recorded, unsent_cards
from jobs.picks import choose_picks
from services import Services
from storage import picks, users
from storage.models import Digest, DigestStatus, User

log = logging.getLogger(__name__)

PER_CHAT_PACE_S = 1.0  # Telegram: about one message per second in one chat
# Enough chats in flight to keep the global limit busy (each sends ~1/s), few enough that a
# user's /recommend reply does not queue behind a long line of digest sends.
MAX_PARALLEL_CHATS = 64


@dataclass
class DigestReport:
    due: int = 0
    sent_users: int = 0
    messages: int = 0
    blocked: int = 0
    failures: int = 0
    skipped_late: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def slot_time(user: User | users.DigestSlot, local_date: str) -> int:
    """When the digest of `local_date` was due: the user's digest time that day in their zone."""
    hour, minute = (int(x) for x in user.digest_time.split(":"))
    day = datetime.fromisoformat(local_date)
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(user.timezone)).timestamp())


def snoozed(user: User | users.DigestSlot, local_date: str) -> bool:
    """/settings "pause N days": a digest whose slot comes before the snooze's end is not sent."""
    until = user.paused_until if isinstance(user, users.DigestSlot) else user.digest_paused_until
    return until is not None and slot_time(user, local_date) < until


def due_date(user: User | users.DigestSlot, now: int, grace_s: float) -> tuple[str, bool] | None:
    """(local date, on time?) of the newest digest slot that has passed, or None before the first.

    Yesterday's slot is considered too, so a slot at 23:30 is still sent after a restart at 00:30.
    """
    tz = ZoneInfo(user.timezone)
    local_now = datetime.fromtimestamp(now, tz)
    hour, minute = (int(x) for x in user.digest_time.split(":"))
    for days_back in (0, 1):
        day = (local_now - timedelta(days=days_back)).date()
        slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if slot.timestamp() > now:
            continue
        if slot.timestamp() < user.created_at:
            return None  # the user arrived after this slot: their first digest is the next one
        return day.isoformat(), now - slot.timestamp() <= grace_s
    return None


class DigestRunner:
    """One per process: knows which digests it is sending right now, so a tick never doubles one."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.in_progress: set[int] = set()
        self.limit = asyncio.Semaphore(MAX_PARALLEL_CHATS)

    async def run(self, bot: ExtBot) -> DigestReport:
        svc, started = self.services, time.monotonic()
        report = DigestReport()
        pending = await claim_due_digests(svc, report, skip=self.in_progress)
        report.due = len(pending)
        results = await asyncio.gather(*(self._send(bot, d, report) for d in pending))
        report.sent_users = sum(1 for r in results if r)
        report.seconds = time.monotonic() - started
        if report.due or report.skipped_late:
            log.info(
                "job=digest due=%d sent_users=%d messages=%d blocked=%d failures=%d late_skipped=%d seconds=%.1f",
                report.due,
                report.sent_users,
                report.messages,
                report.blocked,
                report.failures,
                report.skipped_late,
                report.seconds,
            )
        return report

    async def _send(self, bot: ExtBot, digest: Digest, report: DigestReport) -> bool:
        self.in_progress.add(digest.id)
        try:
            async with self.limit:
                return await send_digest(self.services, bot, digest, report)
        finally:
            self.in_progress.discard(digest.id)


async def claim_due_digests(svc: Services, report: DigestReport, skip: Collection[int] = ()) -> list[Digest]:
    """Claim the digests whose slot passed (once per user and local date, in the database) and
    return every claimed, unfinished one still worth sending; the embedded runner sends them here,
    distributed mode defers one task per digest."""
    now = svc.now()
    slots: dict[int, tuple[str, bool]] = {}
    for n, user in enumerate(users.digest_candidates(svc.db, now)):
        if n % 500 == 499:
            await asyncio.sleep(0)  # many users: let replies and taps through meanwhile
        try:
            slot = due_date(user, now, svc.settings.jobs.digest_grace_s)
        except (ZoneInfoNotFoundError, ValueError):  # a bad zone or time in the row: not the others' problem
            log.warning(
                "digest user=%d skipped: timezone %r / digest time %r unusable",
                user.id,
                user.timezone,
                user.digest_time,
            )
            report.errors.append("bad_user_settings")
            continue
        if slot is not None and snoozed(user, slot[0]):
            continue  # a slot inside a snooze that has ended since: skipped, not sent late
        if slot is not None:
            slots[user.id] = slot
    claimed = picks.claimed_days(svc.db, {day for day, _ in slots.values()})  # one query, not one per user
    for user_id, (local_date, on_time) in slots.items():
        if (user_id, local_date) in claimed:
            continue
        if picks.claim_digest(svc.db, user_id, local_date, now) and not on_time:
            digest = picks.get_digest(svc.db, user_id, local_date)
            picks.update_digest(svc.db, digest.id, status=DigestStatus.SKIPPED, finished_at=now)
            report.skipped_late += 1
    pending = []
    for digest in picks.unfinished_digests(svc.db):
        if digest.id in skip:  # being sent by this process right now
            continue
        if now - digest.claimed_at > svc.settings.jobs.digest_grace_s:
            # Interrupted long ago (downtime past the grace period): too late to finish.
            picks.update_digest(svc.db, digest.id, status=DigestStatus.EXPIRED, finished_at=now)
            report.skipped_late += 1
            continue
        pending.append(digest)
    return pending


async def send_digest(svc: Services, bot: ExtBot, digest: Digest, report: DigestReport) -> bool:
    """Send one claimed digest's undelivered picks and mark it; False when it is not (yet) sent.
    The one body both the embedded runner and the distributed `send` task run."""
    user = users.get_user_by_id(svc.db, digest.user_id)
    if user is None or user.blocked or user.digest_paused or snoozed(user, digest.local_date):
        # Snoozed after the claim (a worker had not sent it yet): skipped too.
        picks.update_digest(svc.db, digest.id, status=DigestStatus.SKIPPED, finished_at=svc.now())
        return False
    try:
        # Not `report.messages += await ...`: that reads the total before the await.
        sent = await _deliver(svc, bot, user, digest)
        report.messages += sent
    except TelegramError as exc:
        if not chat_gone(exc):
            # Left 'claimed': the next tick resumes with the picks not yet sent.
            report.failures += 1
            report.errors.append(type(exc).__name__)
            return False
        users.update_user(svc.db, user.id, blocked=True)  # until they write to the bot again
        picks.update_digest(svc.db, digest.id, status=DigestStatus.BLOCKED, finished_at=svc.now())
        report.blocked += 1
        return False
    except Exception as exc:  # noqa: BLE001 - one user's broken digest must not end the run
        log.exception("digest user=%d failed", user.id)
        report.failures += 1
        report.errors.append(type(exc).__name__)
        return False
    picks.update_digest(
        svc.db,
        digest.id,
        status=DigestStatus.SENT,
        finished_at=svc.now(),
        sent_count=len(json.loads(digest.picks or "[]")),
    )
    return True


async def _deliver(svc: Services, bot: ExtBot, user: User, digest: Digest) -> int:
    """The digest's messages; how many Telegram confirmed. A day with nothing new: one short line.
    Otherwise one header that rings, then the picks in silence; or, compact, one message of lines."""
    shown_ids = _recorded_picks(svc, user, digest)
    if not shown_ids:
        await send_note(bot, user, t(user.language, "digest_nothing_new"))
        return 1
    items = unsent_cards(svc, shown_ids)
    header = header_text(user.language, len(shown_ids), digest.local_date)
    if user.digest_compact:
        return await send_compact(bot, svc, user, header, items)
    sent = 0
    if items and len(items) == len(shown_ids):  # none went yet: a resumed digest does not ring again
        await send_note(bot, user, header)
        sent = 1
        await asyncio.sleep(PER_CHAT_PACE_S)
    return sent + await send_recorded(bot, svc, user, items, pace_s=PER_CHAT_PACE_S, bulk=True, silent=True)


def _recorded_picks(svc: Services, user: User, digest: Digest) -> list[int]:
    """The digest's shown rows; chosen and recorded on the first attempt."""
    shown_ids = json.loads(digest.picks or "[]")
    if not shown_ids:
        batch = choose_picks(svc, user, user.picks_per_page)
        # One transaction, and another process's picks win if it attached them first.
        shown = [card.shown() for card in batch.items]
        shown_ids = picks.record_digest_picks(svc.db, digest.id, user.id, shown, svc.now(), user.chat_id)
        digest.picks = json.dumps(shown_ids)
    return shown_ids
