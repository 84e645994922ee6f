"""One user's broken sync never stops the others (issue 11 §1.2, the jobs side).

The sync run is the bot's own (`Ticker.run_syncs`) against the bilibili double over HTTP; the odd
data is served by the double. Whatever the exception (a parser's ValueError, a database error), the
user goes through the failure path: the error is reported, the next sync is planned later with a
growing delay, and the users behind them in the batch still sync.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

import jobs.onboarding
import jobs.sync
import jobs.tick
from jobs.schedule import RETRY_AFTER_FAILURE_S
from jobs.sync import sync_user
from jobs.tick import Ticker
from storage import behaviour, users
from tests.harness import link_user, make_services

BROKEN, HEALTHY = 3301, 3302
NO_APP = SimpleNamespace(bot=None)  # only a dead login sends a notice; none dies here


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


def two_users(svc, double) -> tuple[int, int]:
    """The broken user is the longest overdue, so they head every batch."""
    videos = double.popular_order[100:160]
    double.add_user(BROKEN, "broken", history=[(b, 1_700_000_000 - i) for i, b in enumerate(videos[:30])])
    double.add_user(HEALTHY, "healthy", history=[(b, 1_700_000_000 - i) for i, b in enumerate(videos[30:])])
    broken = link_user(svc, double, 1, BROKEN)
    healthy = link_user(svc, double, 2, HEALTHY)
    users.update_user(svc.db, broken, next_sync_at=svc.now() - 600)
    users.update_user(svc.db, healthy, next_sync_at=svc.now() - 60)
    return broken, healthy


def break_history(double) -> None:
    """A wrong-typed field in one history row: "progress": "1.5" (issue 11 §1.2)."""
    watch = next(iter(double.users[BROKEN].history.values()))
    watch.progress = "1.5"


def break_storage(monkeypatch, user_id: int) -> None:
    """The database fails while storing this user's rows (a lock, a full disk)."""
    save_pull = behaviour.save_pull

    def failing(db, uid, *args, **kwargs):
        if uid == user_id:
            raise OperationalError("INSERT INTO behaviours", {}, Exception("database is locked"))
        return save_pull(db, uid, *args, **kwargs)

    monkeypatch.setattr(jobs.sync.behaviour, "save_pull", failing)


def watches(svc, user_id: int) -> int:
    return behaviour.behaviour_counts(svc.db, user_id).get("watch", 0)


@pytest.mark.parametrize("fault", ["wrong_typed_field", "database_error"])
async def test_a_user_whose_sync_raises_does_not_stop_the_next_user(svc, bilibili_double, monkeypatch, fault):
    broken, healthy = two_users(svc, bilibili_double)
    if fault == "wrong_typed_field":
        break_history(bilibili_double)
    else:
        break_storage(monkeypatch, broken)
    started = svc.now()

    await Ticker(svc).run_syncs(NO_APP)

    assert watches(svc, healthy) == 30, "the user behind the broken one synced in the same run"
    retry_at = users.get_user_by_id(svc.db, broken).next_sync_at
    assert retry_at >= started + RETRY_AFTER_FAILURE_S, "a failed sync is retried later, not at once"


async def test_a_failing_user_no_longer_heads_every_batch(svc, bilibili_double, monkeypatch):
    monkeypatch.setattr(jobs.tick, "SYNC_BATCH", 1)
    broken, healthy = two_users(svc, bilibili_double)
    break_storage(monkeypatch, broken)
    ticker = Ticker(svc)

    await ticker.run_syncs(NO_APP)  # the broken user's turn
    await ticker.run_syncs(NO_APP)  # the next run reaches the healthy one

    assert watches(svc, healthy) == 30


async def test_each_failure_in_a_row_waits_longer_and_a_success_resets_the_wait(svc, bilibili_double, monkeypatch):
    broken, _ = two_users(svc, bilibili_double)
    break_storage(monkeypatch, broken)
    ticker = Ticker(svc)
    delays = []
    for _ in range(3):
        users.update_user(svc.db, broken, next_sync_at=svc.now() - 1)
        await ticker.run_syncs(NO_APP)
        delays.append(users.get_user_by_id(svc.db, broken).next_sync_at - svc.now())
    assert delays[0] >= RETRY_AFTER_FAILURE_S and delays[1] > delays[0] and delays[2] > delays[1]

    monkeypatch.undo()
    users.update_user(svc.db, broken, next_sync_at=svc.now() - 1)
    await ticker.run_syncs(NO_APP)
    assert watches(svc, broken) == 30
    break_storage(monkeypatch, broken)
    users.update_user(svc.db, broken, next_sync_at=svc.now() - 1)
    await ticker.run_syncs(NO_APP)
    assert users.get_user_by_id(svc.db, broken).next_sync_at - svc.now() <= delays[0] + 5


async def test_a_bad_candidate_item_does_not_stop_the_users_syncs(svc, bilibili_double):
    """A popular-list item with a wrong-typed owner ("owner": "x") used to kill every sync run."""
    double = bilibili_double
    _, healthy = two_users(svc, double)
    odd = double.videos[double.popular_order[0]]
    archive = odd.archive
    odd.archive = lambda: {**archive(), "owner": "x"}

    await Ticker(svc).run_syncs(NO_APP)

    assert watches(svc, healthy) == 30
    report = await sync_user(svc, healthy)
    assert report.ok, report.error


async def test_a_failed_first_training_is_left_to_the_next_pass_not_lost(svc, bilibili_double, monkeypatch):
    """Onboarding: the sync stored the behaviour, then the trainer failed (out of memory, a bug)."""
    _, healthy = two_users(svc, bilibili_double)
    told = []

    class View:
        async def status(self, key: str, **values) -> None:
            told.append(key)

        async def notify(self, key: str, **values) -> None:
            told.append(key)

    async def failing_training(services, user_ids):
        raise MemoryError("the trainer ran out of memory")

    monkeypatch.setattr(jobs.onboarding, "train_users_now", failing_training)

    ready = await jobs.onboarding.first_sync_and_train(svc, healthy, View())

    assert ready is False and told == ["sync_started", "sync_training"]
    assert watches(svc, healthy) == 30
    assert healthy in {u.id for u in users.users_due_training(svc.db, svc.now())}, "the tick trains them next"
