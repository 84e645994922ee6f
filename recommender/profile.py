"""What the model learnt, as lists and as a PNG card."""
from __future__ import annotations

import io
import warnings
from typing import Mapping

from .user_model import UserModel
from .types import TasteProfile

_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
              "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Droid Sans Fallback")


def taste_profile(model: UserModel, top: int = 8) -> TasteProfile:
    """Top names by learnt wide weight; only positive weights (what the user leans toward)."""
    def pick(key: str) -> list[tuple[str, float]]:
        return [(n, w) for n, w in model.profile.get(key, []) if w > 0][:top]

    return TasteProfile(pick("tags"), pick("uploaders"), pick("partitions"))


def cjk_font() -> str | None:
    """The first installed font family that can draw Chinese, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in _CJK_FONTS if f in installed), None)


def render_profile_png(profile: TasteProfile, titles: Mapping[str, str]) -> bytes:
    """Three horizontal bar charts. titles: localized section titles keyed "tags", "uploaders",
    "partitions" (and optional "title"). Without a CJK font, Chinese glyphs render as boxes.
    Uses Figure directly (no pyplot, no global rcParams): safe to call from worker threads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    font = cjk_font()
    fp = FontProperties(family=[font, "DejaVu Sans"] if font else ["DejaVu Sans"])
    sections = [("tags", profile.tags), ("uploaders", profile.uploaders), ("partitions", profile.partitions)]
    fig = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    for ax, (key, items) in zip(fig.subplots(1, 3), sections):
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
