"""What the model learnt, as lists and as a PNG card."""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .types import TasteProfile
from .user_model import UserModel

_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Droid Sans Fallback",
)


def taste_profile(model: UserModel, top: int = 8) -> TasteProfile:
    """Top names by learnt wide weight; only positive weights (what the user leans toward)."""

    def pick(key: str) -> list[tuple[str, float]]:
        return [(n, w) for n, w in model.profile.get(key, []) if w > 0][:top]

    return TasteProfile(pick("tags"), pick("uploaders"), pick("partitions"))


@dataclass(frozen=True)
class TagTrend:
    """How the top tags' share of the user's watches moved, month by month (oldest first)."""

    months: list[str]  # "2026-07"
    shares: list[tuple[str, list[float]]]  # (tag, its share of each month's watches, 0..1), top tag first


def tag_trend(
    watches: Iterable[tuple[int, Sequence[str]]], tz: str = "UTC", top: int = 5, max_months: int = 12
) -> TagTrend:
    """The `top` tags of the last `max_months` months with watches, and for each month the share of
    that month's watches that carried the tag (a watch with three tags counts for each of them).
    Months between the first and the last without a watch are kept, at share 0: gaps stay visible."""
    zone = ZoneInfo(tz)
    totals: Counter[tuple[int, int]] = Counter()
    by_tag: dict[tuple[int, int], Counter[str]] = {}
    for at, tags in watches:
        local = datetime.fromtimestamp(at, zone)
        month = (local.year, local.month)
        totals[month] += 1
        by_tag.setdefault(month, Counter()).update(set(tags))
    if not totals:
        return TagTrend([], [])
    months = _month_range(min(totals), max(totals))[-max_months:]
    overall: Counter[str] = Counter()
    for month in months:
        overall.update(by_tag.get(month, Counter()))
    shares = [
        (tag, [by_tag.get(m, Counter())[tag] / totals[m] if totals[m] else 0.0 for m in months])
        for tag, _ in overall.most_common(top)
    ]
    return TagTrend([f"{y}-{m:02d}" for y, m in months], shares)


def _month_range(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    months, (year, month) = [], first
    while (year, month) <= last:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def cjk_font() -> str | None:
    """The first installed font family that can draw Chinese, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in _CJK_FONTS if f in installed), None)


def render_profile_png(profile: TasteProfile, titles: Mapping[str, str], trend: TagTrend | None = None) -> bytes:
    """Two panels: three horizontal bar charts of the learnt taste and, below, the top tags' share of
    the watches month by month. titles: localized section titles keyed "tags", "uploaders",
    "partitions", "trend", "trend_none" (and optional "title"). Without a CJK font, Chinese glyphs
    render as boxes. Uses Figure directly (no pyplot, no global rcParams): safe from worker threads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    font = cjk_font()
    fp = FontProperties(family=[font, "DejaVu Sans"] if font else ["DejaVu Sans"])
    sections = [("tags", profile.tags), ("uploaders", profile.uploaders), ("partitions", profile.partitions)]
    fig = Figure(figsize=(12, 9), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 3)
    bars = [fig.add_subplot(grid[0, column]) for column in range(3)]
    _draw_trend(fig.add_subplot(grid[1, :]), trend or TagTrend([], []), titles, fp)
    for ax, (key, items) in zip(bars, sections):
        names = [n for n, _ in items][::-1]
        ax.barh(range(len(names)), [w for _, w in items][::-1], color="#fb7299")
        ax.set_yticks(range(len(names)), names, fontproperties=fp)
        ax.set_title(titles.get(key, key), fontproperties=fp)
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    if "title" in titles:
        fig.suptitle(titles["title"], fontproperties=fp)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        if font is None:  # known: without a CJK font Chinese glyphs are boxes; one warning per glyph is noise
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_trend(ax, trend: TagTrend, titles: Mapping[str, str], fp) -> None:
    """One line per top tag: its share (%) of each month's watches."""
    ax.set_title(titles.get("trend", "trend"), fontproperties=fp)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not trend.shares:
        ax.text(
            0.5, 0.5, titles.get("trend_none", "—"), ha="center", va="center", transform=ax.transAxes, fontproperties=fp
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    x = range(len(trend.months))
    for tag, shares in trend.shares:
        ax.plot(x, [100 * v for v in shares], marker="o", label=tag)
    step = max(1, len(trend.months) // 12)
    ax.set_xticks(list(x)[::step], trend.months[::step])
    ax.set_ylabel("%")
    ax.set_ylim(bottom=0)
    ax.legend(prop=fp, loc="upper left", fontsize="small", frameon=False)
