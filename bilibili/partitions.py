"""bilibili's main partitions as the ranking endpoint takes them since the 2025 overhaul (reference §11.5).

`ranking/v2?rid=` takes a **v2** main id (动画 1005 ...); a legacy tid (动画 1) reportedly gets a
month-old list, so nothing here hands one out. 0 is the whole site. 生活 (legacy 160) has no v2
ranking: it was split into 生活兴趣 1030 / 生活经验 1031 / vlog 1029, whose ranking is unconfirmed.
List items still carry the legacy `tid`, kept here as `legacy_tid` to tell which partition a
stored video's main partition was.
"""

from __future__ import annotations

from dataclasses import dataclass

OVERALL = 0  # ranking/v2?rid=0: the whole site


@dataclass(frozen=True)
class Partition:
    id: int  # v2 main id: what ranking/v2 takes as `rid`
    zh: str
    en: str
    legacy_tid: int  # the pre-2025 main tid (what list items' `tid` belongs to)


PARTITIONS: tuple[Partition, ...] = (
    Partition(1005, "动画", "Animation", 1),
    Partition(1003, "音乐", "Music", 3),
    Partition(1004, "舞蹈", "Dance", 129),
    Partition(1008, "游戏", "Gaming", 4),
    Partition(1010, "知识", "Knowledge", 36),
    Partition(1012, "科技数码", "Tech & Gadgets", 188),
    Partition(1018, "体育运动", "Sports", 234),
    Partition(1013, "汽车", "Cars", 223),
    Partition(1020, "美食", "Food", 211),
    Partition(1024, "动物", "Animals", 217),
    Partition(1007, "鬼畜", "Kichiku (remix)", 119),
    Partition(1014, "时尚美妆", "Fashion & Beauty", 155),
    Partition(1002, "娱乐", "Entertainment", 5),
    Partition(1001, "影视", "Film & TV", 181),
)

# The pre-2025 tree under each legacy main tid of the table: a stored video's `tid` is usually one of
# these sub-partitions (17 单机游戏 is under 4 游戏); retired subs kept, old videos still carry them.
# Source: SocialSisterYi/bilibili-API-collect docs/video/video_zone.md (256 短片 from bilibili's site).
LEGACY_SUBS: dict[int, tuple[int, ...]] = {
    1: (24, 25, 47, 210, 86, 253, 27),
    3: (28, 31, 30, 59, 193, 29, 130, 243, 244, 194),
    129: (20, 154, 156, 198, 199, 200),
    4: (17, 171, 172, 65, 173, 121, 136, 19),
    36: (201, 124, 228, 207, 208, 209, 229, 122, 39, 96, 98),
    188: (95, 230, 231, 232, 233, 189, 190, 191),
    234: (235, 249, 164, 236, 237, 238),
    223: (245, 246, 247, 248, 240, 227, 176, 224, 225, 226),
    211: (76, 212, 213, 214, 215),
    217: (218, 219, 220, 221, 222, 75),
    119: (22, 26, 126, 216, 127),
    155: (157, 252, 158, 159, 192),
    5: (71, 241, 242, 137, 131),
    181: (182, 183, 85, 184, 256),
}

# The 2025 sub-partitions (a video's `tid_v2`) under each v2 main id of the table, first one first.
# Source: SocialSisterYi/bilibili-API-collect docs/video/video_zone_v2.md.
V2_SUBS: dict[int, range] = {
    1005: range(2037, 2055),
    1003: range(2016, 2028),
    1004: range(2028, 2037),
    1008: range(2064, 2080),
    1010: range(2084, 2096),
    1012: range(2099, 2106),
    1018: range(2133, 2143),
    1013: range(2106, 2111),
    1020: range(2149, 2154),
    1024: range(2167, 2172),
    1007: range(2059, 2064),
    1014: range(2111, 2120),
    1002: range(2009, 2016),
    1001: range(2001, 2009),
}

BY_ID: dict[int, Partition] = {p.id: p for p in PARTITIONS}
BY_LEGACY_TID: dict[int, Partition] = {p.legacy_tid: p for p in PARTITIONS}


def partition(rid: int) -> Partition | None:
    """The v2 main partition with this id; None for 0 (the whole site), a legacy tid or anything else."""
    return BY_ID.get(rid)


def is_ranking_id(rid: int) -> bool:
    """What ranking/v2 answers with a current list: 0 or a v2 main id of the table."""
    return rid == OVERALL or rid in BY_ID


def partition_tids(rid: int) -> frozenset[int]:
    """Every partition id a stored video of v2 main partition `rid` may carry: its legacy main and sub
    tids (`tid`), the v2 main id and its v2 subs (`tid_v2`); empty for an id not in the table."""
    if rid not in BY_ID:
        return frozenset()
    return legacy_tids(rid) | {rid} | frozenset(V2_SUBS.get(rid, ()))


def v2_sub_of_legacy(tid: int) -> int:
    """A v2 sub-partition for a legacy tid (the first sub of its main's v2 twin); 0 when unknown."""
    for part in PARTITIONS:
        if tid == part.legacy_tid or tid in LEGACY_SUBS.get(part.legacy_tid, ()):
            return V2_SUBS[part.id][0]
    return 0


def legacy_tids(rid: int) -> frozenset[int]:
    """Every legacy tid a stored video of v2 main partition `rid` may carry (its main and sub tids);
    empty for an id not in the table."""
    part = BY_ID.get(rid)
    return frozenset((part.legacy_tid, *LEGACY_SUBS.get(part.legacy_tid, ()))) if part else frozenset()
