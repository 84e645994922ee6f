"""The per-user token bucket behind the /login, /recommend and /forget limits (handlers/cooldown.py)."""

from __future__ import annotations

from handlers import cooldown
from handlers.cooldown import Cooldowns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_period_and_one_notice_per_wait():
    clock = Clock()
    limits = Cooldowns(clock)
    assert [limits.take(1, "recommend", 10, burst=3) for _ in range(3)] == [0, 0, 0]
    assert limits.take(1, "recommend", 10, burst=3) == 10
    assert limits.tell_once(1, "recommend") and not limits.tell_once(1, "recommend")
    assert limits.take(2, "recommend", 10, burst=3) == 0, "another user has their own bucket"
    clock.now += 4
    assert limits.take(1, "recommend", 10, burst=3) == 6
    clock.now += 6
    assert limits.take(1, "recommend", 10, burst=3) == 0
    assert limits.take(1, "recommend", 10, burst=3) > 0 and limits.tell_once(1, "recommend"), "told again"
    limits.reset(1, "recommend")
    assert limits.take(1, "recommend", 10, burst=3) == 0
    assert limits.take(1, "login", 0) == 0 and limits.take(1, "login", 0) == 0, "0 s: no limit"


def test_memory_stays_bounded(monkeypatch):
    monkeypatch.setattr(cooldown, "MAX_BUCKETS", 100)
    clock = Clock()
    limits = Cooldowns(clock)
    for user in range(1000):
        limits.take(user, "recommend", 1, burst=1)
        clock.now += 0.1
    assert len(limits) <= 100
