"""Daily digest fan-out: N users x P picks through the running bot, against the Telegram double with
Telegram's flood limits enforced (30 messages/s overall, 1 message/s per chat: beyond them, 429).

    .venv/bin/python bench/digest.py [--users 2000] [--picks 5] [--tick 60]

Setup: the bilibili double's catalogue is loaded into storage (jobs.sync.refresh_candidates), then N users
are created in SQLite (not linked to bilibili: they get popular picks), spread over five time zones, each
with a digest time one minute ago (local) and created a day earlier, and each chat is known to the Telegram
double. The real Application (bot.py, via tests.botenv.running_bot) then runs unchanged: its JobQueue tick
(jobs/tick.py, every --tick seconds, default 60 as in production) runs DigestRunner, which sends through
bot.py's rate limiter. The bench waits until every digest is finished (a run that leaves some 'claimed'
after errors is resumed by a later tick, as in production).

Figures, all from the double's records (monotonic clock at the double):
- msgs_per_s: pick messages / (last pick message - first pick message)
- duplicates: (chat, bvid) pairs received more than once
- lost: digest picks recorded in `shown` but never received, plus picks missing from users x picks
- the most messages in any 1 s window, overall and in one chat, and the 429s the double answered

Last line: msgs_per_s=<v> duplicates=<n> lost=<n>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench.looplag import LoopLag  # noqa: E402
from jobs.digest import DigestReport  # noqa: E402
from jobs.sync import refresh_candidates  # noqa: E402
from storage import users  # noqa: E402
from storage.models import Digest, Shown  # noqa: E402
from tests.botenv import TOKEN, pick_bvid, pick_messages, running_bot  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402
from tests.harness import make_services  # noqa: E402

TIMEZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata")
FLOOD_LIMITS = (30, 1)  # Telegram: 30 messages/s overall, about 1 message/s in one chat
FIRST_CHAT = 700_000_001


async def prepare(data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, n_users: int, n_picks: int) -> int:
    """Catalogue + N due users in storage; returns the number of candidate videos."""
    svc = make_services(data_dir, bili)
    n_videos = await refresh_candidates(svc, force=True)
    now = svc.now()
    for i in range(n_users):
        chat = FIRST_CHAT + i
        tz = TIMEZONES[i % len(TIMEZONES)]
        due = datetime.fromtimestamp(now - 60, ZoneInfo(tz)).strftime("%H:%M")
        users.ensure_user(
            svc.db, chat, chat, "en", now=now - 86400, timezone=tz, digest_time=due, picks_per_page=n_picks
        )
        tg.known_chat(chat)  # the user pressed Start at some point
    await svc.close()
    return n_videos


def digest_states(svc) -> Counter:
    """Digests by status (one small query: the bench must not stall the bot's event loop)."""
    with svc.db.session() as s:
        return Counter(dict(s.exec(select(Digest.status, func.count()).group_by(Digest.status)).all()))


def classify_429s(tg: TelegramDouble) -> tuple[int, int]:
    """Which limit each 429 hit: the chat had a send in the second before, or else the 30/s overall."""
    by_chat: dict[int, list[float]] = {}
    for m in tg.sent:
        by_chat.setdefault(m.chat_id, []).append(m.time)
    per_chat = overall = 0
    for e in tg.errors:
        if e["error_code"] != 429:
            continue
        t, chat = e["time"], e["params"].get("chat_id")
        if any(t - 1.0 < x <= t + 0.05 for x in by_chat.get(chat, [])):
            per_chat += 1
        else:  # the double has only these two limits
            overall += 1
    return per_chat, overall


class GaveUpCounter(logging.Filter):
    """Counts (and keeps off the console) PTB's "Rate limit hit after maximum of N retries" tracebacks:
    each is a send that raised RetryAfter to the digest job (the digest stays claimed for a later tick)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Rate limit hit after maximum"):
            self.count += 1
            return False
        return True


async def run(n_users: int, n_picks: int, tick_s: float, timeout_s: float | None = None, inspect=None) -> dict:
    """`inspect(tg)`, if given, is called with the double once the bot has stopped (for experiments)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    gave_up = GaveUpCounter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(gave_up)
    expected = n_users * n_picks
    timeout_s = timeout_s or 120 + 3 * expected / FLOOD_LIMITS[0]
    async with (
        BilibiliDouble() as bili,
        TelegramDouble(token=TOKEN, keep_photo_bytes=False, flood_limits=FLOOD_LIMITS) as tg,
    ):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            setup_started = time.monotonic()
            n_videos = await prepare(data_dir, tg, bili, n_users, n_picks)
            print(
                f"setup: users={n_users} picks={n_picks} candidates={n_videos} "
                f"flood_limits={tg.flood_limits} seconds={time.monotonic() - setup_started:.1f}",
                flush=True,
            )

            reports: list[DigestReport] = []
            async with running_bot(data_dir, tg, bili, tick_seconds=tick_s) as (app, svc):
                # Observe (not change) each digest run: keep the report the tick would only log.
                ticker = app.job_queue.get_jobs_by_name("tick")[0].callback
                real_run = ticker.digests.run

                async def observed_run(bot):
                    report = await real_run(bot)
                    if report.due or report.skipped_late:
                        reports.append(report)
                    return report

                ticker.digests.run = observed_run
                started = time.monotonic()
                async with LoopLag(tick_s=0.01) as lag:
                    last_print = started
                    while True:
                        await asyncio.sleep(1.0)
                        states = digest_states(svc)
                        done = sum(states.values()) >= n_users and not states.get("claimed")
                        now = time.monotonic()
                        if done or now - last_print >= 30 or now - started > timeout_s:
                            picks_now = pick_messages(tg)
                            rate = (
                                len(picks_now) / (picks_now[-1].time - picks_now[0].time) if len(picks_now) > 1 else 0.0
                            )
                            n429 = sum(1 for e in tg.errors if e["error_code"] == 429)
                            print(
                                f"  t={now - started:5.0f}s pick_messages={len(picks_now)} rate={rate:.2f}/s "
                                f"429s={n429} digests={dict(states)}",
                                flush=True,
                            )
                            last_print = now
                        if done or now - started > timeout_s:
                            break
                timed_out = not done

            # The bot has stopped: every record is final.
            messages = pick_messages(tg)
            with svc.db.session() as s:
                shown = s.exec(select(Shown).where(Shown.source == "digest")).all()
                states = Counter(d.status for d in s.exec(select(Digest)).all())
            svc.db.dispose()
            if inspect is not None:
                inspect(tg)

    received = Counter((m.chat_id, pick_bvid(m)) for m in messages)
    duplicates = sum(1 for n in received.values() if n > 1)
    recorded = {(r.chat_id, r.bvid) for r in shown}
    lost_recorded = len(recorded - set(received))
    never_recorded = max(0, expected - len(recorded))
    lost = lost_recorded + never_recorded
    span = messages[-1].time - messages[0].time if len(messages) > 1 else 0.0
    rate = len(messages) / span if span else 0.0
    errors = Counter(f"{e['method']}:{e['error_code']}" for e in tg.errors if e["method"] != "getUpdates")
    n429 = sum(1 for e in tg.errors if e["error_code"] == 429)
    n429_chat, n429_global = classify_429s(tg)
    photos = sum(1 for m in messages if m.is_photo)
    uploads = sum(1 for m in messages if m.photo_size is not None)

    # Throughput per 10 s slice: where (if anywhere) the rate sagged.
    slices = Counter(int((m.time - messages[0].time) // 10) for m in messages) if messages else Counter()
    per_slice = [slices.get(k, 0) / 10 for k in range(max(slices) + 1)] if slices else []
    full = per_slice[:-1] or per_slice
    print(f"digest runs: {len(reports)}")
    for n, r in enumerate(reports, 1):
        print(
            f"  run {n}: due={r.due} sent_users={r.sent_users} messages={r.messages} blocked={r.blocked} "
            f"failures={r.failures} skipped_late={r.skipped_late} seconds={r.seconds:.1f} "
            f"errors={dict(Counter(r.errors))}"
        )
    print(f"digests: {dict(states)}{' (TIMED OUT)' if timed_out else ''}")
    print(
        f"pick messages: {len(messages)} of {expected} expected (photos={photos}, uploads={uploads}, "
        f"text={len(messages) - photos}); shown rows (digest)={len(shown)} "
        f"undelivered rows={sum(1 for r in shown if r.message_id is None)}"
    )
    print(f"span first->last pick message: {span:.1f}s")
    if per_slice:
        print(
            f"msgs/s per 10 s slice: min={min(full):.1f} max={max(full):.1f} "
            f"slices<27={sum(1 for x in full if x < 27)}/{len(full)}"
        )
    print(
        f"max messages in any 1 s window: global={tg.max_rate_global(1.0)} per_chat={tg.max_rate_per_chat(1.0)} "
        f"(limits {FLOOD_LIMITS[0]}/{FLOOD_LIMITS[1]})"
    )
    print(
        f"429s returned by the double: {n429} (per-chat limit: {n429_chat}, global limit: {n429_global}); "
        f"API errors: {dict(errors)}"
    )
    print(f"sends that gave up after the rate limiter's retries (RetryAfter raised to the job): {gave_up.count}")
    print(lag.summary())
    print(f"lost: recorded-not-received={lost_recorded} never-recorded={never_recorded}")
    result = {"msgs_per_s": rate, "duplicates": duplicates, "lost": lost}
    print(f"msgs_per_s={rate:.2f} duplicates={duplicates} lost={lost}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--picks", type=int, default=5)
    parser.add_argument("--tick", type=float, default=60.0, help="JOB_TICK_SECONDS (production: 60)")
    args = parser.parse_args()
    asyncio.run(run(args.users, args.picks, args.tick))


if __name__ == "__main__":
    main()
