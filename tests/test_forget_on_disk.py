"""/forget makes the leaver's bytes go: not readable in the database file's free pages, not in the
WAL, not in the model directory (SQLite; Postgres needs VACUUM FULL, see README)."""

from __future__ import annotations

from pathlib import Path

from storage import blocks, users
from tests.botenv import eventually, forget_in_chat, running_bot
from tests.harness import link_user

LEAVER_NAME = "Qzx_leaver_独特的名字_7781"
LEAVER_TG = 987_654_321_987
LEAVER_MID = 3_141_592_653
LEAVER_KEYWORD = "Zq_屏蔽词_leaver_5521"  # a block rule only the leaver has
LEAVER_BLACKLISTED = 2_718_281_828  # an uploader on the leaver's bilibili blacklist


def traces(value: int) -> list[bytes]:
    """How an id can sit in a file: as text, or as SQLite's big-endian 6/8-byte integer."""
    return [str(value).encode(), value.to_bytes(6, "big"), value.to_bytes(8, "big")]


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    return sorted(
        f"{path.relative_to(root)} ({needle!r})"
        for path in root.rglob("*")
        if path.is_file()
        for needle in needles
        if needle in path.read_bytes()
    )


async def test_after_forget_no_file_in_the_data_directory_holds_the_leavers_name_or_ids(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.2) as (app, svc):
        bilibili_double.add_generated_user(LEAVER_MID, seed=5, n_history=60, uname=LEAVER_NAME)
        bilibili_double.add_generated_user(777001, seed=6, n_history=60)
        bilibili_double.blacklist(LEAVER_MID, LEAVER_BLACKLISTED)  # read at the leaver's sync
        stayer = link_user(svc, bilibili_double, 424242, 777001)
        leaver = link_user(svc, bilibili_double, LEAVER_TG, LEAVER_MID)
        users.update_user(svc.db, leaver, bili_uname=LEAVER_NAME)  # as /login stores the account's name
        blocks.add_rule(svc.db, leaver, "keyword", LEAVER_KEYWORD, "", svc.now())
        await eventually(lambda: svc.models.latest_version(str(leaver)) is not None, 60, "the leaver's model")
        needles = [
            LEAVER_NAME.encode(),
            *traces(LEAVER_TG),
            *traces(LEAVER_MID),
            LEAVER_KEYWORD.encode(),
            str(LEAVER_BLACKLISTED).encode(),
        ]
        await eventually(lambda: blocks.rules(svc.db, leaver)[-1].source == "bilibili", 60, "the blacklist read")
        assert files_holding(tmp_path, needles), "the test must see the leaver on disk before /forget"
        for rule in (LEAVER_KEYWORD.encode(), str(LEAVER_BLACKLISTED).encode()):
            assert files_holding(tmp_path, [rule]), "the leaver's block rules are on disk before /forget"
        await forget_in_chat(tg, tg.user(LEAVER_TG, language_code="en"))
        left = files_holding(tmp_path, needles)
        assert not (tmp_path / "models" / str(leaver)).exists()
        assert users.get_user_by_id(svc.db, stayer) is not None
    assert left == [], f"the leaver is still readable in {left}"
