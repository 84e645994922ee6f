"""The first page after a login (issue 17 item 7): the first part of the sync keeps the related
lists its view/detail answers carry (no call of their own), and pulls those of the strongest
signals (a few calls), as that user's own candidates and never another's."""

from __future__ import annotations

from jobs.sync import COIN_SEED_LIMIT, QUICK_RELATED_PER_VIDEO, quick_sync
from storage import candidates, catalogue
from tests.doubles.bilibili import RELATED, VIEW_DETAIL
from tests.harness import link_user, make_services

ALICE, BOB = 4901, 4902
ALICE_CHAT, BOB_CHAT = 9901, 9902


async def test_the_first_part_keeps_view_detail_related_lists_as_that_users_candidates(tmp_path, bilibili_double):
    bili = bilibili_double
    bili.add_generated_user(ALICE, seed=7, n_history=60)
    bili.add_user(BOB, "bob")
    svc = make_services(tmp_path, bili)
    try:
        alice, bob = link_user(svc, bili, ALICE_CHAT, ALICE), link_user(svc, bili, BOB_CHAT, BOB)
        related_calls = bili.calls[RELATED]
        report = await quick_sync(svc, alice)
        assert report.ok, report.error
        # A seed whose view/detail already brought its list costs no archive/related call of its own.
        assert bili.calls[VIEW_DETAIL] > 0 and bili.calls[RELATED] - related_calls <= COIN_SEED_LIMIT
        own = {b for b, source in candidates.user_candidates(svc.db, alice) if source == "related"}
        # the graph of every video whose related list came (view/detail's or its own call), stored once
        seeds = catalogue.related_fetched(svc.db, bili.users[ALICE].history, since=0)
        assert len(seeds) > COIN_SEED_LIMIT, "view/detail's lists too"
        assert {r for b in seeds for r in bili.related_bvids(b)[:QUICK_RELATED_PER_VIDEO]} <= own
        assert own <= {r for b in seeds for r in bili.related_bvids(b)}
        assert not candidates.user_candidates(svc.db, bob), "never another user's"
    finally:
        await svc.close()
