"""How long a training pass holds up the bot: the longest event-loop stall while N users retrain.

    python bench/stall.py [--users 200] [--no-freeze]

N users are linked and synced against the bilibili double, then jobs.training.train_users_now
retrains them all, twice, while a watcher on the same event loop asks to wake every 5 ms. What holds
the loop thread or the GIL (work left on the loop, a garbage collection walking every object) shows
up as a late wake-up: a /recommend or a tap arriving then waits that long. The same for
jobs.training.rebuild_shared (after a /forget). Like bot.py, the process calls gc.freeze() once set
up; --no-freeze shows the stalls without it.

Last line: max_stall_ms=<longest late wake-up during either training pass>
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.looplag import LoopLag  # noqa: E402
from jobs.sync import sync_user  # noqa: E402
from jobs.training import rebuild_shared, train_users_now  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.harness import link_generated_users, make_services  # noqa: E402


async def stalls_during(work: Awaitable[object]) -> tuple[float, LoopLag]:
    """(seconds the work took, the loop's late wake-ups meanwhile)."""
    async with LoopLag() as lag:
        started = time.perf_counter()
        await work
        seconds = time.perf_counter() - started
    return seconds, lag


def report(label: str, seconds: float, lag: LoopLag) -> float:
    print(f"{label:28s} seconds={seconds:.2f} max_stall_ms={lag.max_ms:.1f} stalls_over_50ms={lag.over(50)}")
    return lag.max_ms


async def run(n_users: int, freeze: bool) -> None:
    async with BilibiliDouble() as double:
        with tempfile.TemporaryDirectory() as tmp:
            svc = make_services(Path(tmp), double)
            ids = link_generated_users(svc, double, n_users, first_mid=20_000)
            for uid in ids:
                assert (await sync_user(svc, uid)).ok
            if freeze:
                gc.freeze()  # as bot.py does once the application is built
            worst = 0.0
            for label in ("first", "repeat"):
                passed = await stalls_during(train_users_now(svc, ids))
                worst = max(worst, report(f"train {n_users} users ({label})", *passed))
            svc.models.drop_shared()
            report("rebuild shared", *await stalls_during(rebuild_shared(svc)))
            await svc.close()
    print(f"max_stall_ms={worst:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze()")
    args = parser.parse_args()
    asyncio.run(run(args.users, freeze=not args.no_freeze))


if __name__ == "__main__":
    main()
