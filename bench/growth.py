"""Does a pass cost what its own users cost? Synthetic users over a long-tailed catalogue on
PostgreSQL, measured at two population sizes 4x apart.

    python bench/growth.py [--small 500] [--large 2000] [--events 1500] [--catalogue 1000000]
                           [--shard 16] [--newcomer-watches 1100] [--database-url URL]

The world: `--catalogue` videos; each user's events are a third from a Zipf head (the popular
videos everyone meets) and two thirds from the long tail (videos of their own), so a real-shaped
history of ~1,500 rows brings ~1,000 videos nobody else has. Rows go in with COPY.

At each size, each figure in a fresh process (peak RSS is the process's own):
- a training pass of one shard (`--shard` users; two shards, the faster counts): ms per user and
  peak RSS, after the signals of that population were built;
- the collaborative signals' build (jobs.training.build_shared): seconds and peak RSS;
- the digest claim over every user (jobs.digest.claim_due_digests).
At the large size: /recommend's pick choice (jobs.picks.choose_picks) p95 over trained users, and a
new user logging in through the real Application at bilibili's pace (4 requests/s): seconds from
the QR confirm to the first personal picks, and that bot process's peak RSS.

Last line: users_small= users_large= pass_ms_per_user_ratio= pass_peak_rss_ratio= shared_build_s=
recommend_p95_ms= errors= first_picks_s= rss_mb=
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

NOW = 1_800_000_000
HEAD = 20_000  # the popular head of the catalogue
CANDIDATES = 3_000  # videos in this week's candidate lists
PARTITIONS = 24
TAG_VOCAB = 5_000
UPLOADERS = 60_000
PACE_RPS = 4.0
DIGEST_TIME = "15:30"  # NOW is 16:00 in Shanghai: every user's digest is due, on time


@dataclass
class World:
    url: str
    catalogue: int
    events: int


def bvid(n: int) -> str:
    return f"BV1{n:09d}"


# ---- building the population (COPY) ----


def _user_videos(rng: np.random.Generator, world: World) -> np.ndarray:
    head_size = min(HEAD, world.catalogue // 5)  # a small catalogue keeps a long tail too
    head = np.minimum(rng.zipf(1.2, world.events // 3), head_size) - 1
    tail = rng.integers(head_size, world.catalogue, world.events - len(head))
    return np.unique(np.concatenate([head, tail]))


def _video_row(n: int) -> tuple:
    rng = np.random.default_rng(n)
    tags = [f"tag{int(t)}" for t in np.minimum(rng.zipf(1.3, 3), TAG_VOCAB)]
    view = int(rng.lognormal(9 if n >= HEAD else 12, 1.5))
    return (
        bvid(n),
        n + 1,
        f"video {n}",
        "",
        n % UPLOADERS,
        f"up{n % UPLOADERS}",
        int(rng.integers(30, 1800)),
        int(n % PARTITIONS) + 1,
        f"zone{n % PARTITIONS}",
        NOW - int(rng.integers(0, 400 * 86400)),
        view,
        view // 50,
        view // 80,
        view // 40,
        view // 60,
        view // 200,
        view // 20,
        json.dumps(tags),
        NOW,
        NOW if n < CANDIDATES else 0,
        False,
    )


_VIDEO_COLUMNS = (
    "bvid, aid, title, cover, owner_mid, owner_name, duration, tid, tname, pubdate, view, danmaku, "
    'reply, favorite, coin, share, "like", tags, fetched_at, candidate_at, unavailable'
)


def add_users(world: World, first: int, count: int) -> list[int]:
    """`count` users (telegram ids first…) with their behaviour and any video they bring."""
    from storage.db import Database

    db = Database(world.url)
    conn = db.engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute("SELECT bvid FROM videos")
        known = {row[0] for row in cur.fetchall()}
        ids = []
        with cur.copy(
            "COPY users (telegram_id, chat_id, language, timezone, digest_time, digest_paused, "
            "picks_per_page, blocked, session_dead, created_at) FROM STDIN"
        ) as copy:
            for t in range(first, first + count):
                copy.write_row((t, t, "en", "Asia/Shanghai", DIGEST_TIME, False, 5, False, False, NOW - 86400))
        cur.execute(
            "SELECT id, telegram_id FROM users WHERE telegram_id >= %s AND telegram_id < %s", (first, first + count)
        )
        by_telegram = dict((t, i) for i, t in cur.fetchall())
        new_videos: set[int] = set()
        with cur.copy("COPY behaviours (user_id, bvid, kind, progress, duration, coins, at) FROM STDIN") as copy:
            for t in range(first, first + count):
                rng = np.random.default_rng(t)
                uid = by_telegram[t]
                ids.append(uid)
                for j, n in enumerate(_user_videos(rng, world)):
                    b, at = bvid(int(n)), NOW - 86400 - j * 600
                    if b not in known:
                        new_videos.add(int(n))
                    copy.write_row((uid, b, "watch", int(rng.integers(1, 600)), 600, None, at))
                    roll = rng.random()
                    if roll < 0.10:
                        copy.write_row((uid, b, "like", None, None, None, at))
                    if roll < 0.03:
                        copy.write_row((uid, b, "favorite", None, None, None, at))
                    if roll < 0.01:
                        copy.write_row((uid, b, "coin", None, None, 1, at))
        with cur.copy(f"COPY videos ({_VIDEO_COLUMNS}) FROM STDIN") as copy:
            for n in sorted(new_videos | set(range(CANDIDATES))):
                if bvid(n) not in known:
                    copy.write_row(_video_row(n))
        conn.commit()
        cur.execute("ANALYZE")
        return ids
    finally:
        conn.close()
        db.dispose()


# ---- measurements, each in a fresh process ----


def _services(url: str, data_dir: str):
    from cryptography.fernet import Fernet
    from pydantic import SecretStr  # noqa: F401

    from bilibili import BilibiliClient
    from services import Services, build_model_store
    from settings import DistributedSettings, JobSettings, Settings, StorageSettings
    from storage.crypto import CredentialVault
    from storage.db import Database

    settings = Settings.__new__(Settings)
    settings.telegram = Settings().telegram
    settings.bilibili = Settings().bilibili
    settings.storage = StorageSettings(DATA_DIR=data_dir, DATABASE_URL=url)
    settings.jobs = JobSettings()
    settings.work = DistributedSettings(WORK_MODE="distributed")
    db = Database(url)
    return Services(
        settings=settings,
        db=db,
        vault=CredentialVault([Fernet.generate_key().decode()]),
        bili=BilibiliClient(settings.bilibili),
        models=build_model_store(settings, db),
        clock=lambda: float(NOW),
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_pass(url: str, user_ids: list[int]) -> tuple[float, float]:
    """(ms per user, peak RSS MB) of one training pass over these users (models saved), in a worker
    that is warm: the signals loaded and torch's one-off imports done (the peak RSS counts them)."""
    import torch._dynamo  # noqa: F401 - imported by the first fused Adam: once per worker process

    from jobs.training import _train_and_save

    with tempfile.TemporaryDirectory() as tmp:
        svc = _services(url, tmp)
        svc.models.load_shared()  # a worker holds the signals once per build, not once per pass
        started = time.perf_counter()
        saved = _train_and_save(svc, user_ids, NOW)
        elapsed = time.perf_counter() - started
        if len(saved) != len(user_ids):
            raise RuntimeError(f"trained {len(saved)} of {len(user_ids)} users")
        svc.db.dispose()
    return 1000 * elapsed / len(user_ids), _peak_rss_mb()


def measure_shared(url: str) -> tuple[float, float, int, int]:
    """(seconds, peak RSS MB, users in it, videos in it) of building and saving the signals."""
    from jobs.training import build_shared

    with tempfile.TemporaryDirectory() as tmp:
        svc = _services(url, tmp)
        started = time.perf_counter()
        shared = build_shared(svc)
        svc.models.save_shared(shared)
        elapsed = time.perf_counter() - started
        svc.db.dispose()
    return elapsed, _peak_rss_mb(), len(shared.members), len(shared.bvids)


def measure_claim(url: str) -> tuple[float, int]:
    """Seconds to claim every user's digest (all due at once), and how many were claimed."""
    from jobs.digest import DigestReport, claim_due_digests
    from storage import picks

    with tempfile.TemporaryDirectory() as tmp:
        svc = _services(url, tmp)
        started = time.perf_counter()
        pending = asyncio.run(claim_due_digests(svc, DigestReport()))
        elapsed = time.perf_counter() - started
        with svc.db.engine.begin() as conn:  # the next size claims afresh
            from sqlalchemy import delete

            from storage.models import Digest

            conn.execute(delete(Digest))
        svc.db.dispose()
    del picks
    return elapsed, len(pending)


def measure_recommend(url: str, user_ids: list[int], rounds: int) -> float:
    """p95 ms of choose_picks (what /recommend runs before Telegram) over trained users."""
    from jobs.picks import choose_picks
    from storage import users

    with tempfile.TemporaryDirectory() as tmp:
        svc = _services(url, tmp)
        people = [users.get_user_by_id(svc.db, uid) for uid in user_ids]
        choose_picks(svc, people[0], 5)  # warm: the model and the signals load once per process
        times = []
        for _round in range(rounds):
            for person in people:
                started = time.perf_counter()
                batch = choose_picks(svc, person, 5)
                times.append(1000 * (time.perf_counter() - started))
                if batch.mode != "personal" or not batch.items:
                    raise RuntimeError(f"user {person.id}: {batch.mode} with {len(batch.items)} picks")
        svc.db.dispose()
    return float(np.percentile(times, 95))


def measure_first_picks(url: str, watches: int) -> tuple[float, float]:
    """A new user logs in through the real Application on this database at bilibili's pace:
    (seconds from the QR confirm to the first personal picks, the process's peak RSS MB)."""
    return asyncio.run(_first_picks(url, watches))


async def _first_picks(url: str, watches: int) -> tuple[float, float]:
    from pydantic import SecretStr

    from bot import build_application
    from jobs.sync import refresh_candidates
    from recommender.blobstore import BlobModelStore
    from storage.model_blobs import DatabaseBlobs
    from tests.botenv import TOKEN, first_picks_ready, qr_key_after_login
    from tests.doubles.bilibili import BilibiliDouble
    from tests.doubles.telegram import TelegramDouble
    from tests.harness import make_services

    async with BilibiliDouble() as double, TelegramDouble(token=TOKEN) as tg:
        with tempfile.TemporaryDirectory() as tmp:
            svc = make_services(Path(tmp), double, database_url=url, tick_seconds=3600)
            # The models and the signals the population's passes saved, as every process of a deployment reads them.
            svc.models = BlobModelStore(DatabaseBlobs(svc.db))
            svc.settings.telegram.bot_token = SecretStr(tg.token)
            svc.settings.telegram.base_url = tg.base_url
            app = build_application(svc.settings, svc)
            await app.initialize()
            await app.post_init(app) if app.post_init else None
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            try:
                await refresh_candidates(svc, force=True)  # warm, as the first tick of a running bot
                svc.bili.throttle.max_rps = PACE_RPS
                double.add_long_history_user(990_001, uname="newcomer", watches=watches, seed=4242)
                person = tg.user(990_001, first_name="new", language_code="en")
                key = await qr_key_after_login(tg, double, person)
                mark, confirmed = tg.mark(), time.monotonic()
                double.scan(key)
                double.confirm(key, 990_001)
                await first_picks_ready(tg, person, mark, timeout=600)
                first_s = time.monotonic() - confirmed
            finally:
                await app.updater.stop()
                await app.stop()
                await app.post_stop(app) if app.post_stop else None
                await app.shutdown()
                await app.post_shutdown(app) if app.post_shutdown else None
    return first_s, _peak_rss_mb()


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# ---- the run ----


def _fresh_database() -> str | None:
    from tests.dbfixtures import NoPostgres, create_throwaway_database

    try:
        return create_throwaway_database("bilipick_growth")
    except NoPostgres as exc:
        print(f"skipped: the growth bench needs PostgreSQL (TEST_POSTGRES_URL): {exc}")
        return None


class Errors:
    def __init__(self) -> None:
        self.count = 0

    def guard(self, what: str, fn, *args, default=None):
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - a failed figure is counted and shown, the run goes on
            self.count += 1
            print(f"ERROR in {what}:\n{traceback.format_exc()}", flush=True)
            return default


def size_figures(world: World, label: str, users: int, shards: list[list[int]], errors: Errors) -> dict:
    """The signals first (a pass loads the ones of its own population, as in steady state), then a pass
    over each shard (the fastest counts: the machine is shared), then the digest claim."""
    nan = float("nan")
    build_s, build_rss, members, items = errors.guard(
        "shared build", in_fresh_process, measure_shared, world.url, default=(nan, nan, 0, 0)
    )
    passes = [
        errors.guard("training pass", in_fresh_process, measure_pass, world.url, shard, default=(nan, nan))
        for shard in shards
    ]
    pass_ms, pass_rss = min(passes)
    claim_s, claimed = errors.guard("digest claim", in_fresh_process, measure_claim, world.url, default=(nan, 0))
    print(
        f"{label:5s} users={users:6d} pass_ms_per_user={pass_ms:8.1f} pass_peak_rss_mb={pass_rss:7.1f} "
        f"(passes: {', '.join(f'{ms:.0f}' for ms, _ in passes)} ms/user) "
        f"shared_build_s={build_s:6.2f} shared_peak_rss_mb={build_rss:7.1f} shared_users={members} "
        f"shared_videos={items} digest_claim_s={claim_s:6.2f} claimed={claimed}",
        flush=True,
    )
    return {"pass_ms": pass_ms, "pass_rss": pass_rss, "build_s": build_s}


def run(args: argparse.Namespace) -> int:
    from storage.db import Database
    from tests.dbfixtures import drop_database

    url = args.database_url or _fresh_database()
    if url is None:
        return 0  # a laptop without the server: said why above
    errors = Errors()
    world = World(url, args.catalogue, args.events)
    try:
        Database(url).migrate()
        started = time.perf_counter()
        population = add_users(world, 1, args.small)
        print(f"built {args.small} users x ~{args.events} events in {time.perf_counter() - started:.0f}s", flush=True)
        shard = args.shard
        small = size_figures(world, "small", args.small, [population[:shard], population[shard : 2 * shard]], errors)
        started = time.perf_counter()
        population += add_users(world, args.small + 1, args.large - args.small)
        print(f"grew to {args.large} users in {time.perf_counter() - started:.0f}s", flush=True)
        # The same shard size on the larger population: its own, untrained users.
        grown = population[args.small :]
        large = size_figures(world, "large", args.large, [grown[:shard], grown[shard : 2 * shard]], errors)
        trained = grown[:shard]
        p95 = errors.guard(
            "recommend", in_fresh_process, measure_recommend, url, trained, args.rounds, default=float("nan")
        )
        first_s, rss = errors.guard(
            "first picks",
            in_fresh_process,
            measure_first_picks,
            url,
            args.newcomer_watches,
            default=(float("nan"), float("nan")),
        )
        print(
            f"recommend_p95_ms={p95:.1f} over {len(trained)} users x {args.rounds} rounds; "
            f"newcomer ({args.newcomer_watches} watches): first picks {first_s:.1f}s, bot peak RSS {rss:.0f} MB"
        )
    finally:
        if not args.database_url:
            drop_database(url)
    print(
        f"users_small={args.small} users_large={args.large} "
        f"pass_ms_per_user_ratio={large['pass_ms'] / small['pass_ms']:.2f} "
        f"pass_peak_rss_ratio={large['pass_rss'] / small['pass_rss']:.2f} shared_build_s={large['build_s']:.2f} "
        f"recommend_p95_ms={p95:.1f} errors={errors.count} first_picks_s={first_s:.1f} rss_mb={rss:.0f}"
    )
    return 1 if errors.count else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=500, help="users at the first size")
    parser.add_argument("--large", type=int, default=2000, help="users at the second size (4x the first)")
    parser.add_argument("--events", type=int, default=1500, help="events per user")
    parser.add_argument("--catalogue", type=int, default=1_000_000, help="videos in the long-tailed catalogue")
    parser.add_argument("--shard", type=int, default=16, help="users in the training pass measured")
    parser.add_argument("--rounds", type=int, default=5, help="/recommend rounds over the shard's users")
    parser.add_argument("--newcomer-watches", type=int, default=1100, help="history of the user who logs in")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a throwaway one)")
    args = parser.parse_args()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
