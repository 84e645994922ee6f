"""Bilibili calls and seconds for a first and a repeat sync of N users, against the bilibili double.

    python bench/sync.py [--users 20]

Last line: repeat_sync_calls=<max calls for an unchanged user>
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.sync import sync_user  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.harness import link_user, make_services  # noqa: E402


async def run(n_users: int) -> None:
    async with BilibiliDouble() as double:
        with tempfile.TemporaryDirectory() as tmp:
            svc = make_services(Path(tmp), double)
            ids = []
            for i in range(n_users):
                mid = 10_000 + i
                if i == 0:
                    double.add_long_history_user(mid)
                else:
                    double.add_generated_user(mid, seed=i, n_history=150)
                ids.append(link_user(svc, double, i + 1, mid))
            for label in ("first", "repeat"):
                started = time.perf_counter()
                reports = [await sync_user(svc, uid) for uid in ids]
                seconds = time.perf_counter() - started
                calls = [r.calls for r in reports]
                assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
                print(
                    f"{label:6s} sync: users={n_users} calls_total={sum(calls)} calls_max={max(calls)} "
                    f"calls_user0(long history)={calls[0]} items={sum(r.new_items for r in reports)} "
                    f"seconds={seconds:.2f} ms_per_user={1000 * seconds / n_users:.0f}"
                )
            await svc.close()
    print(f"repeat_sync_calls={max(calls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    asyncio.run(run(parser.parse_args().users))


if __name__ == "__main__":
    main()
