"""Users per hour through sync + training + digest in distributed mode, with 1 and with 2 worker
processes (`python -m jobs.worker`) on this machine, against the doubles and a throwaway PostgreSQL
database per run (the server on 127.0.0.1:5432, or TEST_POSTGRES_URL).

    python bench/scale.py [--users 200] [--history 40] [--concurrency 4] [--timeout 1800]

Each run: N linked users due for a sync, today's digest slot just passed (2 picks each), candidates
primed; the clock runs from the workers' start until every user is synced, trained and sent a digest.
Last line: users_per_hour_1=<…> users_per_hour_2=<…> duplicates=<…> lost=<…>
(duplicates: pick messages sent twice; lost: syncs, trainings or digests missing at the end; both
summed over the two runs).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.botenv import TOKEN  # noqa: E402
from tests.dbfixtures import POSTGRES_ADMIN_URL  # noqa: E402
from tests.distributed import (  # noqa: E402
    distributed_services,
    prime_candidates,
    seed_day,
    start_worker,
    stop_worker,
    wait_for_day,
    worker_env,
)
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402


def _database(admin, name: str, create: bool) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def one_run(n_workers: int, n_users: int, history: int, concurrency: int, timeout: float):
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bilipick_scale_{uuid.uuid4().hex[:8]}"
    _database(admin, name, create=True)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    workers = []
    try:
        async with BilibiliDouble() as double, TelegramDouble(token=TOKEN) as tg:
            with tempfile.TemporaryDirectory() as tmp:
                svc = distributed_services(Path(tmp), double, url)
                user_ids = seed_day(svc, double, tg, n_users, n_history=history)
                await prime_candidates(svc)
                env = worker_env(svc, double, tg, url)
                started_at, started = svc.now(), time.perf_counter()
                workers = [
                    start_worker(env, Path(tmp) / f"w{i}.log", concurrency=concurrency) for i in range(n_workers)
                ]
                day = await wait_for_day(svc, tg, user_ids, started_at, timeout, workers)
                seconds = time.perf_counter() - started
                for w in workers:
                    stop_worker(w)
                await svc.close()
    finally:
        for w in workers:
            stop_worker(w, kill=True)
        _database(admin, name, create=False)
        admin.dispose()
    per_hour = day.users * 3600 / seconds  # lost work (reported apart) makes this figure void
    print(
        f"workers={n_workers} users={n_users} seconds={seconds:.1f} synced={day.synced} trained={day.trained} "
        f"digests={day.digests_sent} duplicates={day.duplicates} overlapping_syncs={day.overlapping_syncs} "
        f"users_per_hour={per_hour:.0f}",
        flush=True,
    )
    return per_hour, day


async def main(args: argparse.Namespace) -> None:
    rates, duplicates, lost = {}, 0, 0
    for n in (1, 2):
        rate, day = await one_run(n, args.users, args.history, args.concurrency, args.timeout)
        rates[n], duplicates, lost = rate, duplicates + day.duplicates, lost + day.lost
    print(f"users_per_hour_1={rates[1]:.0f} users_per_hour_2={rates[2]:.0f} duplicates={duplicates} lost={lost}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--history", type=int, default=40, help="watched videos per user in the double")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker process")
    parser.add_argument("--timeout", type=float, default=1800)
    asyncio.run(main(parser.parse_args()))
