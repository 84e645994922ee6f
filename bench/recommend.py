"""/recommend handler time with already trained models: N users (default 50) at once, against both doubles.

    .venv/bin/python bench/recommend.py [--users 50] [--rounds 3] [--capped-rounds 1] [--profile]

Setup runs in a child process, so the measuring process starts cold: N users are linked directly in
storage with the bilibili double's credentials, synced (jobs.sync.sync_user) and trained
(jobs.training.train_users_now). The measuring process then runs the real Application (bot.py, through
tests.botenv.running_bot) against the Telegram double, with the periodic tick removed so that only
/recommend runs.

Two different things are measured, because "how long does /recommend take" has two answers:

- handler time: what the /recommend handler itself costs. The handler coroutine is driven step by step
  and the time of each step on the event loop is added up: storage reads, ranking, rendering, building
  and parsing the Bot API requests. Not counted: waiting for Telegram's answers and waiting behind
  other users' handlers. Measured with 50 users' handlers running at once (their steps interleave, so
  caches and the allocator are shared as in production). This is the figure the goal is about.
- latency: from the double queueing the /recommend update (send_text) to the FIRST / LAST of the user's
  pick messages arriving at the double, on the event loop's monotonic clock. When N users ask at the
  same instant, the last user waits for everyone's handler time (one event loop; the doubles run in the
  same process and add their own work), and with the real cap for Telegram's 30 messages/s: N x 5
  photos cannot arrive in less than N x 5 / 30 s. Reported with the cap lifted (TELEGRAM_MAX_RPS=100000)
  and with it.

Rounds: cold = the first /recommend after the bot process started, one user alone (no model in memory
yet); first-touch = all N at once, each model read from disk; warm = all N at once, models cached
(the p95 of the last line); one at a time; and, with the real limiter, capped end-to-end.
choose_picks, the synchronous part (storage reads + ranking), is timed separately by wrapping it.

Last line: p95_ms=<handler time, warm rounds> cold_ms=<handler time, cold call>
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from cryptography.fernet import Fernet
from telegram.ext import Application, CommandHandler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import handlers.recommend  # noqa: E402
from jobs.schedule import after_sync  # noqa: E402
from jobs.sync import sync_user  # noqa: E402
from jobs.training import train_users_now  # noqa: E402
from services import Services  # noqa: E402
from storage import users  # noqa: E402
from tests.botenv import TOKEN, eventually, is_pick, last_message_id, running_bot  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.telegram import SentMessage, TelegramDouble  # noqa: E402
from tests.harness import link_generated_users, make_services  # noqa: E402

TG_ID_BASE = 900_000  # telegram user id (= private chat id) of bench user i is TG_ID_BASE + i
MID_BASE = 10_000  # bilibili mid of bench user i
LIFTED_RPS = "100000"
ROUND_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- setup (child process)
async def prepare(data_dir: Path, n_users: int) -> None:
    """Users linked in storage, synced and trained; everything lands in data_dir (db + model files)."""
    async with BilibiliDouble() as bili:
        svc = make_services(data_dir, bili, fernet_keys=os.environ["FERNET_KEYS"])
        try:
            ids = link_generated_users(svc, bili, n_users, first_mid=MID_BASE, first_telegram_id=TG_ID_BASE)
            started = time.perf_counter()
            for uid in ids:
                report = await sync_user(svc, uid)
                assert report.ok, report.error
                after_sync(svc, uid, report)
            synced = time.perf_counter() - started
            train = await train_users_now(svc, ids)
            assert train.users == n_users, f"trained {train.users} of {n_users}"
            print(f"setup: users={n_users} sync_s={synced:.1f} train_s={train.seconds:.1f} samples={train.samples}")
        finally:
            await svc.close()


def prepare_in_child(data_dir: Path, n_users: int) -> None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--prepare", str(data_dir), "--users", str(n_users)]
    subprocess.run(cmd, check=True)


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Timing:
    first_ms: float  # update queued -> first pick message at the double
    last_ms: float  # update queued -> last pick message at the double


async def one_round(tg: TelegramDouble, people: list[dict], n_picks: int = 5) -> list[Timing]:
    """Every user sends /recommend at (nearly) the same moment; waits until all picks arrived."""
    before = {p["id"]: last_message_id(tg, p) for p in people}
    sent_at: dict[int, float] = {}
    for p in people:
        sent_at[p["id"]] = time.monotonic()
        await tg.send_text(p, "/recommend")

    def fresh(p: dict) -> list[SentMessage]:
        return [m for m in tg.sent_to(p) if m.message_id > before[p["id"]]]

    # arrival times come from the double's records, not from this polling
    await eventually(
        lambda: all(sum(map(is_pick, fresh(p))) >= n_picks for p in people), ROUND_TIMEOUT_S, "every user's picks"
    )
    timings = []
    for p in people:
        picks = [m for m in fresh(p) if is_pick(m)]
        # exactly the picks: no "still training" / "no picks" note, so the model was used
        assert len(picks) == n_picks == len(fresh(p)), [m.content[:40] for m in fresh(p)]
        t0 = sent_at[p["id"]]
        timings.append(Timing(1000 * (min(m.time for m in picks) - t0), 1000 * (max(m.time for m in picks) - t0)))
    return timings


@contextmanager
def timed_choose_picks(samples: list[float]) -> Iterator[None]:
    """Times the synchronous choose_picks inside the real handler (the handler module's reference)."""
    original: Callable[..., Any] = handlers.recommend.choose_picks

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            samples.append(1000 * (time.perf_counter() - started))

    handlers.recommend.choose_picks = wrapper
    try:
        yield
    finally:
        handlers.recommend.choose_picks = original


class OwnTime:
    """Awaits a coroutine by driving it step by step, adding up the time its steps run: its own work,
    not the time it is suspended (waiting for an HTTP answer, or for other tasks to yield the loop)."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.seconds = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        resume: Callable[[Any], Any] = self.coro.send
        value: Any = None
        while True:
            started = time.perf_counter()
            try:
                awaited = resume(value)
            except StopIteration as done:
                return done.value
            finally:
                self.seconds += time.perf_counter() - started
            try:
                value, resume = (yield awaited), self.coro.send
            except BaseException as exc:  # e.g. cancellation: delivered to the coroutine
                value, resume = exc, self.coro.throw


@contextmanager
def timed_handler(app: Application, command: str, samples: list[float]) -> Iterator[None]:
    """Records the handler time (OwnTime, ms) of every `command` update the application handles."""
    handler = next(
        h for group in app.handlers.values() for h in group if isinstance(h, CommandHandler) and command in h.commands
    )
    original = handler.callback

    async def timed(update: Any, context: Any) -> Any:
        run = OwnTime(original(update, context))
        try:
            return await run
        finally:
            samples.append(1000 * run.seconds)

    handler.callback = timed
    try:
        yield
    finally:
        handler.callback = original


@asynccontextmanager
async def bot(
    data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, max_rps: str | None
) -> AsyncIterator[tuple[Application, Services]]:
    """The real Application without its periodic tick (no syncs, training or digests during the bench)."""
    # Each user asks many times a minute here: the per-user /recommend limit would refuse them.
    env = {"RECOMMEND_COOLDOWN": "0", **({"TELEGRAM_MAX_RPS": max_rps} if max_rps else {})}
    with mock.patch.dict(os.environ, env):
        # The key the child stored the logins under: with any other the bot refuses to start.
        async with running_bot(data_dir, tg, bili, fernet_keys=os.environ["FERNET_KEYS"], tick_seconds=3600) as (
            app,
            svc,
        ):
            for job in app.job_queue.get_jobs_by_name("tick"):  # its first run is 1 s after start
                job.schedule_removal()
            yield app, svc


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:52s} n={len(values):<4d} p50={pct(values, 50):7.1f}  p95={pct(values, 95):7.1f}  "
        f"max={max(values):7.1f} ms"
    )


def print_timings(label: str, timings: list[Timing]) -> None:
    print(summary(f"{label} to first pick", [t.first_ms for t in timings]))
    print(summary(f"{label} to last pick", [t.last_ms for t in timings]))


AREAS = (  # first match wins: where a function's own (tottime) seconds are counted
    ("tests/doubles", "doubles (test-only)"),
    ("aiohttp", "doubles' aiohttp server"),
    ("/telegram/", "python-telegram-bot"),
    ("httpx", "httpx/httpcore client"),
    ("httpcore", "httpx/httpcore client"),
    ("sqlalchemy", "sqlalchemy/sqlmodel"),
    ("sqlmodel", "sqlalchemy/sqlmodel"),
    ("sqlite3", "sqlalchemy/sqlmodel"),
    ("anyio", "httpx/httpcore client"),
    ("/h11/", "httpx/httpcore client"),
    ("importlib", "imports (httpcore retries a missing `import sniffio` per request)"),
    ("torch", "torch"),
    ("/recommender/", "recommender"),
    ("/jobs/", "jobs"),
    ("/handlers/", "handlers"),
    ("/storage/", "storage"),
    ("asyncio", "asyncio"),
)


def area_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    return next((label for key, label in AREAS if key in where), "other")


def by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = area_of(filename, name)
        totals[label] = totals.get(label, 0.0) + tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


async def one_by_one(tg: TelegramDouble, people: list[dict]) -> list[Timing]:
    """Each user alone: the next /recommend is sent once the previous user's picks all arrived."""
    return [t for p in people for t in await one_round(tg, [p])]


async def profiled_round(tg: TelegramDouble, people: list[dict]) -> None:
    """One more warm round under cProfile (the whole event loop: bot, doubles, HTTP)."""
    prof = cProfile.Profile()
    prof.enable()
    await one_round(tg, people)
    prof.disable()
    if dump := os.environ.get("BENCH_PROFILE_DUMP"):
        prof.dump_stats(dump)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    print(
        "profiled warm round, own time by area (s, under cProfile): "
        + ", ".join(f"{label} {sec:.2f}" for label, sec in by_area(stats))
    )
    stats.sort_stats("cumulative").print_stats(r"(jobs|handlers|recommender|storage)/", 25)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())


async def lifted_phase(
    data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, people: list[dict], rounds: int, profile: bool
) -> tuple[float, float]:
    """Cap lifted: the cold call, a first-touch round, warm rounds, one user at a time.
    Returns (handler time p95 of the warm rounds, handler time of the cold call)."""
    compute: list[float] = []
    handler: list[float] = []
    async with bot(data_dir, tg, bili, LIFTED_RPS) as (app, _):
        with timed_choose_picks(compute), timed_handler(app, "recommend", handler):
            cold = (await one_round(tg, people[:1]))[0]
            cold_handler = (await recorded(handler, 1))[0]
            print(
                f"cold (first call after start, 1 user)  handler={cold_handler:.1f} ms  "
                f"choose_picks={compute[-1]:.1f} ms  latency to first pick={cold.first_ms:.1f} ms, "
                f"to last pick={cold.last_ms:.1f} ms"
            )
            for name, run in (
                ("first-touch round", lambda: one_round(tg, people)),
                (f"warm x{rounds}", lambda: many_rounds(tg, people, rounds)),
                ("one user at a time", lambda: one_by_one(tg, people)),
            ):
                compute.clear()
                handler.clear()
                timings = await run()
                await recorded(handler, len(timings))
                print(summary(f"{name}: handler time", handler))
                print(summary(f"{name}: choose_picks", compute))
                print_timings(f"{name}: latency, cap lifted", timings)
                if name.startswith("warm"):
                    warm_handler = list(handler)
            if profile:
                await profiled_round(tg, people)
    return pct(warm_handler, 95), cold_handler


async def recorded(samples: list[float], n: int) -> list[float]:
    """The samples once n are in: a handler records its time after its last message has arrived."""
    await eventually(lambda: len(samples) >= n, ROUND_TIMEOUT_S, f"{n} handler times")
    return samples


async def many_rounds(tg: TelegramDouble, people: list[dict], rounds: int) -> list[Timing]:
    return [t for _ in range(rounds) for t in await one_round(tg, people)]


async def capped_phase(
    data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, people: list[dict], rounds: int
) -> None:
    """bot.py's real rate limiter, models preloaded: end-to-end, which the cap dominates."""
    async with bot(data_dir, tg, bili, None) as (_, svc):
        for uid in users.all_user_ids(svc.db):
            svc.models.load(str(uid))
        since = time.monotonic()
        capped = [t for _ in range(rounds) for t in await one_round(tg, people)]
        rps = svc.settings.telegram.max_messages_per_second
        print_timings(f"capped {rps:g}/s x{rounds}: latency", capped)
        print(f"  most sends in any 1 s window while capped: {tg.max_rate_global(since=since)}")


async def measure(data_dir: Path, n_users: int, rounds: int, capped_rounds: int, profile: bool) -> tuple[float, float]:
    async with BilibiliDouble() as bili, TelegramDouble(token=TOKEN, keep_photo_bytes=False) as tg:
        people = [tg.user(TG_ID_BASE + i, first_name=f"User{i}", language_code="en") for i in range(n_users)]
        result = await lifted_phase(data_dir, tg, bili, people, rounds, profile)
        if capped_rounds:
            await capped_phase(data_dir, tg, bili, people, capped_rounds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds with the cap lifted")
    parser.add_argument("--capped-rounds", type=int, default=1, help="rounds with the real 30/s cap")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra warm round")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.prepare:
        asyncio.run(prepare(args.prepare, args.users))
        return
    # One key for the child that stores the logins and for the measuring bot (the child inherits it).
    os.environ["FERNET_KEYS"] = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp:
        prepare_in_child(Path(tmp), args.users)
        p95, cold = asyncio.run(measure(Path(tmp), args.users, args.rounds, args.capped_rounds, args.profile))
    print(f"p95_ms={p95:.1f} cold_ms={cold:.1f}")


if __name__ == "__main__":
    main()
