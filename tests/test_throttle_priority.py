"""The bilibili request gate gives the next slots to a user who is waiting (issue 13 §4): a login's
first sync goes before the background's syncs, and two users onboarding at once share the slots."""

from __future__ import annotations

import asyncio
import contextlib

from bilibili import Throttle


async def _asker(throttle: Throttle, name: str, n: int, taken: list[str], urgent: bool = False) -> None:
    with Throttle.urgent() if urgent else contextlib.nullcontext():
        for _ in range(n):
            await throttle.acquire()
            taken.append(name)


async def test_urgent_requests_go_first_and_two_onboardings_share_the_slots_evenly():
    throttle = Throttle(max_rps=100, pause_base_s=1, pause_max_s=1)
    taken: list[str] = []
    background = [asyncio.create_task(_asker(throttle, f"bg{i}", 40, taken)) for i in range(3)]
    await asyncio.sleep(0.1)  # the background holds every slot now
    await asyncio.gather(
        _asker(throttle, "alice", 8, taken, urgent=True), _asker(throttle, "bob", 8, taken, urgent=True)
    )
    await asyncio.gather(*background)

    onboarding = [i for i, name in enumerate(taken) if name in ("alice", "bob")]
    during = taken[onboarding[0] : onboarding[-1] + 1]
    assert during.count("alice") == during.count("bob") == 8
    assert len(during) == 16, f"no background slot while someone waits for first picks: {during}"
    for k in range(1, len(during) + 1):  # turn by turn, not first come first served
        assert abs(during[:k].count("alice") - during[:k].count("bob")) <= 1, during


async def test_a_user_facing_request_goes_first_too():
    throttle = Throttle(max_rps=100, pause_base_s=1, pause_max_s=1)
    taken: list[str] = []
    background = [asyncio.create_task(_asker(throttle, f"bg{i}", 10, taken)) for i in range(4)]
    await asyncio.sleep(0.05)

    async def cover_for_a_waiting_user() -> None:
        await throttle.acquire(fail_fast=True)
        taken.append("user")

    at = len(taken)
    await cover_for_a_waiting_user()
    assert taken.index("user") <= at + 1, "one background slot at most was already promised"
    await asyncio.gather(*background)


async def test_a_fail_fast_request_made_in_background_waits_behind_a_waiting_user():
    """A digest's covers are fail_fast (skipped during a risk pause) yet nobody waits for them."""
    throttle = Throttle(max_rps=100, pause_base_s=1, pause_max_s=1)
    taken: list[str] = []

    async def digest_cover(i: int) -> None:
        with Throttle.background():
            await throttle.acquire(fail_fast=True)
        taken.append(f"digest{i}")

    digest = [asyncio.create_task(digest_cover(i)) for i in range(10)]
    await asyncio.sleep(0.03)
    at = len(taken)
    with Throttle.urgent():
        await throttle.acquire(fail_fast=True)
    taken.append("user")
    assert taken.index("user") <= at + 1, "one background slot at most was already promised"
    await asyncio.gather(*digest)
