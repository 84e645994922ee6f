"""Seconds from the QR confirm to the first personal picks, and to the full sync, at bilibili's real
pace (4 requests/s), through the real Application against both doubles.

    python bench/onboarding.py [--watches 100,1000,5000] [--pair 300]

Cases, one after the other on one bot: a user with each number of watches; then, while the largest
user's background sync still runs, two users (--pair watches each) confirming at the same moment.
The bot is warm: the candidate lists and their tags were fetched (unpaced) before the first case,
as the first tick of a running bot does. calls_per_video = metadata calls (view/detail, view, tags)
per video whose metadata the syncs fetched.

Last line: first_picks_s_max=<worst case> calls_per_video=<over the whole run>
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import func, select  # noqa: E402

from jobs.sync import refresh_candidates  # noqa: E402
from storage import users  # noqa: E402
from storage.models import Video  # noqa: E402
from tests.botenv import TOKEN, all_synced, first_picks_ready, qr_key_after_login, running_bot  # noqa: E402
from tests.doubles.bilibili import TAGS, VIEW, VIEW_DETAIL, BilibiliDouble  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402

PACE_RPS = 4.0


class Onboarding:
    """One user from /login to the full sync; times measured from the confirm."""

    def __init__(self, tg, double, svc, n: int, watches: int) -> None:
        self.tg, self.double, self.svc, self.watches = tg, double, svc, watches
        self.mid, self.chat = 70_000 + n, 80_000 + n
        self.user = tg.user(self.chat, first_name=f"u{n}", language_code="en")
        double.add_long_history_user(self.mid, uname=f"heavy{n}", watches=watches, seed=1000 + n)
        self.first_s = self.full_s = float("nan")
        self.from_model = False

    async def until_confirm(self) -> str:
        return await qr_key_after_login(self.tg, self.double, self.user)

    async def confirm(self, key: str) -> None:
        self.mark, self.confirmed = self.tg.mark(), time.monotonic()
        self.double.scan(key)
        self.double.confirm(key, self.mid)

    async def first_picks(self) -> None:
        await first_picks_ready(self.tg, self.user, self.mark, timeout=1800)
        self.first_s = time.monotonic() - self.confirmed
        account = users.get_user(self.svc.db, self.chat)
        self.from_model = self.svc.models.load(str(account.id)) is not None

    async def full_sync(self) -> None:
        await all_synced(self.tg, self.user, self.mark, timeout=7200)
        self.full_s = time.monotonic() - self.confirmed

    def line(self, case: str) -> str:
        return (f"{case:14s} watches={self.watches:5d} first_picks_s={self.first_s:6.1f} "
                f"full_sync_s={self.full_s:7.1f} first_model={'yes' if self.from_model else 'NO'}")


def metadata_calls(double: BilibiliDouble) -> int:
    return double.calls[VIEW_DETAIL] + double.calls[VIEW] + double.calls[TAGS]


def fetched_videos(svc) -> int:
    with svc.db.session() as s:
        return s.exec(select(func.count()).select_from(Video).where(Video.fetched_at > 0)).one()


async def alone(tg, double, svc, n: int, watches: int, wait_full: bool) -> Onboarding:
    user = Onboarding(tg, double, svc, n, watches)
    await user.confirm(await user.until_confirm())
    await user.first_picks()
    if wait_full:
        await user.full_sync()
    return user


async def run(sizes: list[int], pair: int, rps: float = PACE_RPS) -> None:
    async with BilibiliDouble() as double, TelegramDouble(token=TOKEN) as tg:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_bot(Path(tmp), tg, double, tick_seconds=3600) as (_app, svc):
                await refresh_candidates(svc, force=True)  # warm: what the first tick does
                svc.bili.throttle.max_rps = rps
                calls0, fetched0 = metadata_calls(double), fetched_videos(svc)
                done: list[tuple[str, Onboarding]] = []
                for n, watches in enumerate(sizes[:-1]):
                    case = f"{watches} watches"
                    done.append((case, await alone(tg, double, svc, n, watches, wait_full=True)))
                    print(done[-1][1].line(case), flush=True)
                biggest = await alone(tg, double, svc, len(sizes) - 1, sizes[-1], wait_full=False)
                print(f"{sizes[-1]} watches: first picks after {biggest.first_s:.1f}s; its background sync "
                      f"goes on while two more users log in", flush=True)
                two = [Onboarding(tg, double, svc, 100 + i, pair) for i in range(2)]
                keys = [await u.until_confirm() for u in two]
                await asyncio.gather(*(u.confirm(k) for u, k in zip(two, keys)))
                await asyncio.gather(*(u.first_picks() for u in two))
                for u in two:
                    print(u.line("two at once") + " (first picks)", flush=True)
                await asyncio.gather(*(u.full_sync() for u in two))
                done += [("two at once", u) for u in two]
                for u in two:
                    print(u.line("two at once"), flush=True)
                await biggest.full_sync()
                done.append((f"{sizes[-1]} watches", biggest))
                print(biggest.line(f"{sizes[-1]} watches"), flush=True)
                calls, fetched = metadata_calls(double) - calls0, fetched_videos(svc) - fetched0
    worst = max(u.first_s for _, u in done)
    print(f"metadata_calls={calls} videos_fetched={fetched} all_first_models={all(u.from_model for _, u in done)}")
    print(f"first_picks_s_max={worst:.1f} calls_per_video={calls / max(fetched, 1):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watches", default="100,1000,5000", help="history sizes, comma-separated")
    parser.add_argument("--pair", type=int, default=300, help="watches of each of the two users logging in at once")
    parser.add_argument("--rps", type=float, default=PACE_RPS,
                        help="bilibili requests per second (4: bilibili's pace; more only for a smoke run)")
    args = parser.parse_args()
    asyncio.run(run([int(x) for x in args.watches.split(",")], args.pair, args.rps))


if __name__ == "__main__":
    main()
