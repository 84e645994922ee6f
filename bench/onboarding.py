"""Seconds from the QR confirm to the first personal picks, and to the full sync, at bilibili's real
pace (4 requests/s), through the real Application against both doubles.

    python bench/onboarding.py [--watches 100,1000,5000] [--pair 300] [--planted 4]

Cases, one after the other on one bot: a user with each number of watches; then, while the largest
user's background sync still runs, two users (--pair watches each) confirming at the same moment.
Then the quality of the first page: --planted users with planted tastes (3 liked tags, 5 liked
uploaders, the double's generated users) log in one after another. Their first page (the 5 picks
/recommend gives as soon as the first picks are ready) and the page after the full sync are scored
by precision@5 (a pick is a hit when it carries a liked tag or comes from a liked uploader), against
popularity (the same candidates and exclusions, ranked by quality) at the first page.
The bot is warm: the candidate lists and their tags were fetched (unpaced) before the first case,
as the first tick of a running bot does. calls_per_video = metadata calls (view/detail, view, tags)
per video whose metadata the syncs fetched.

Last line: first_picks_s_max=<worst case> calls_per_video=<over the whole run>
first_page_precision_ratio=<first page P@5 / full-sync page P@5, over the planted users>
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

import recommender as rec  # noqa: E402
from jobs.picks import CANDIDATE_WINDOW_S, candidate_rec_videos, choose_picks, excluded_bvids, user_candidate_rec_videos  # noqa: E402  # noqa: E402
from jobs.sync import refresh_candidates  # noqa: E402
from storage import users  # noqa: E402
from storage.models import Video  # noqa: E402
from tests.botenv import TOKEN, all_synced, first_picks_ready, qr_key_after_login, running_bot  # noqa: E402
from tests.doubles.bilibili import TAGS, VIEW, VIEW_DETAIL, BilibiliDouble  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402

PACE_RPS = 4.0
PAGE = 5  # picks per page (the default page size)
# Watches of each planted-taste user. They watch the popular catalogue, their liked part first:
# every liked video watched is one fewer liked candidate left to find.
PLANTED_HISTORY = 60


class Onboarding:
    """One user from /login to the full sync; times measured from the confirm."""

    def __init__(self, tg, double, svc, n: int, watches: int, planted: bool = False) -> None:
        """planted: a user with a planted taste over the popular catalogue (`self.taste`), not a heavy
        viewer of videos outside it."""
        self.tg, self.double, self.svc, self.watches = tg, double, svc, watches
        self.mid, self.chat = 70_000 + n, 80_000 + n
        self.user = tg.user(self.chat, first_name=f"u{n}", language_code="en")
        if planted:
            self.taste = double.add_generated_user(self.mid, seed=500 + n, n_history=watches).taste
        else:
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
        return (
            f"{case:14s} watches={self.watches:5d} first_picks_s={self.first_s:6.1f} "
            f"full_sync_s={self.full_s:7.1f} first_model={'yes' if self.from_model else 'NO'}"
        )


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


def precision(bvids: list[str], double: BilibiliDouble, taste: dict) -> float:
    """Share of the page that matches the planted taste (a liked tag, or a liked uploader)."""
    tags, owners = set(taste["tags"]), set(taste["owners"])
    hits = [bool(tags & set(double.videos[b].tags)) or double.videos[b].owner_mid in owners for b in bvids]
    return sum(hits) / PAGE


def page_now(svc, chat: int) -> list[str]:
    """The page /recommend would show this user now (choose_picks is what it calls)."""
    account = users.get_user(svc.db, chat)
    return [card.bvid for card in choose_picks(svc, account, PAGE).items]


def popular_page(svc, chat: int) -> list[str]:
    """The cold-start ranking over the same candidates and exclusions."""
    account, now = users.get_user(svc.db, chat), svc.now()
    pool = candidate_rec_videos(svc.db, now - CANDIDATE_WINDOW_S) + user_candidate_rec_videos(
        svc.db, account.id, now - CANDIDATE_WINDOW_S
    )
    return [p.bvid for p in rec.rank_popular(pool, k=PAGE, exclude=excluded_bvids(svc, account), now=now)]


async def planted(tg, double, svc, n: int) -> tuple[float, float, float, float]:
    """One planted-taste user from the confirm to the full sync: precision@5 of the first page, of
    popularity then, and of the page after the full sync; seconds to the first picks."""
    user = Onboarding(tg, double, svc, 200 + n, PLANTED_HISTORY, planted=True)
    taste = user.taste
    await user.confirm(await user.until_confirm())
    await user.first_picks()
    first, popular = (
        precision(page_now(svc, user.chat), double, taste),
        precision(popular_page(svc, user.chat), double, taste),
    )
    await user.full_sync()
    full = precision(page_now(svc, user.chat), double, taste)
    print(
        f"planted taste {n}: first page P@5={first:.2f} popularity={popular:.2f} after full sync={full:.2f} "
        f"first_picks_s={user.first_s:.1f}",
        flush=True,
    )
    return first, popular, full, user.first_s


async def run(sizes: list[int], pair: int, rps: float = PACE_RPS, n_planted: int = 4) -> None:
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
                print(
                    f"{sizes[-1]} watches: first picks after {biggest.first_s:.1f}s; its background sync "
                    f"goes on while two more users log in",
                    flush=True,
                )
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
                scores = [await planted(tg, double, svc, n) for n in range(n_planted)]
    worst = max(u.first_s for _, u in done)
    print(f"metadata_calls={calls} videos_fetched={fetched} all_first_models={all(u.from_model for _, u in done)}")
    first, popular, full, _ = (sum(col) / max(len(scores), 1) for col in zip(*scores)) if scores else (0, 0, 0, 0)
    print(
        f"planted tastes ({len(scores)} users, {PLANTED_HISTORY} watches each): precision@5 first page {first:.2f}, "
        f"popularity {popular:.2f}, after the full sync {full:.2f}; first picks within "
        f"{max((s[3] for s in scores), default=0):.1f}s"
    )
    print(
        f"first_picks_s_max={worst:.1f} calls_per_video={calls / max(fetched, 1):.2f} "
        f"first_page_precision_ratio={first / full if full else 0:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watches", default="100,1000,5000", help="history sizes, comma-separated")
    parser.add_argument("--pair", type=int, default=300, help="watches of each of the two users logging in at once")
    parser.add_argument(
        "--rps",
        type=float,
        default=PACE_RPS,
        help="bilibili requests per second (4: bilibili's pace; more only for a smoke run)",
    )
    parser.add_argument("--planted", type=int, default=4, help="users with planted tastes (first-page precision)")
    args = parser.parse_args()
    asyncio.run(run([int(x) for x in args.watches.split(",")], args.pair, args.rps, args.planted))


if __name__ == "__main__":
    main()
