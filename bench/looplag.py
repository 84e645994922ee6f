"""How late the event loop wakes a task that asks to sleep a few ms: its stalls (work holding the loop
thread or the GIL) while something else runs. Shared by bench/digest.py and bench/stall.py."""

from __future__ import annotations

import asyncio
import time


class LoopLag:
    """`async with LoopLag() as lag:` — every late wake-up of a `tick_s` sleep meanwhile, in seconds."""

    def __init__(self, tick_s: float = 0.005) -> None:
        self.tick_s = tick_s
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.tick_s)
            self.lags.append(time.perf_counter() - asked - self.tick_s)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)  # the watcher is asleep before the measured work starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(2 * self.tick_s)  # a wake-up the work's last stretch delayed is counted too
        self._task.cancel()

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.lags, default=0.0)

    def over(self, ms: float) -> int:
        return sum(x > ms / 1000 for x in self.lags)

    def summary(self) -> str:
        lags = sorted(self.lags) or [0.0]
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        stalled = sum(x for x in lags if x > 0.005)
        return f"loop_lag_p99_ms={1000 * p99:.1f} loop_lag_max_ms={self.max_ms:.0f} stalled_s(>5ms)={stalled:.1f}"


async def _demo(seconds: float, busy_ms: float) -> LoopLag:
    """The watcher itself, while a task holds the loop for `busy_ms` every 100 ms: the lag it reports
    should be about busy_ms (a check that the measuring stick works)."""
    async with LoopLag() as lag:
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            spin_until = time.perf_counter() + busy_ms / 1000
            while time.perf_counter() < spin_until:
                pass
            await asyncio.sleep(0.1)
    return lag


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="LoopLag against a known stall (a check of the measure).")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--busy-ms", type=float, default=20.0, help="how long the loop is held every 100 ms")
    args = parser.parse_args()
    print(asyncio.run(_demo(args.seconds, args.busy_ms)).summary())
