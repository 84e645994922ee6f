"""/profile: the learned taste as a chart plus a short summary."""

from __future__ import annotations

import asyncio
import html

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

import recommender as rec
from delivery.i18n import t
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from handlers.cooldown import cooldowns_of, seconds_text
from storage import behaviour


async def profile(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    model = svc.models.load(str(user.id))
    if model is None:
        await update.effective_message.reply_text(t(user.language, "profile_none"))
        return
    limits = cooldowns_of(context.application)  # a chart is CPU and an upload: not on every tap
    if wait_s := limits.take(user.telegram_id, "profile", svc.settings.telegram.profile_cooldown_s):
        if limits.tell_once(user.telegram_id, "profile"):
            text = t(user.language, "cooldown_profile", seconds=seconds_text(wait_s))
            await update.effective_message.reply_text(text)
        return
    await best_effort(context.bot.send_chat_action(user.chat_id, ChatAction.UPLOAD_PHOTO), "upload action")
    taste = rec.taste_profile(model)
    titles = {k: t(user.language, f"profile_{k}") for k in ("tags", "uploaders", "partitions", "trend", "trend_none")}
    # The trend counts watches (a like row carries when it was first seen, not when it was given).
    trend = await asyncio.to_thread(lambda: rec.tag_trend(behaviour.watched_tags(svc.db, user.id), tz=user.timezone))
    # matplotlib takes tens of milliseconds: keep the event loop free meanwhile.
    png = await asyncio.to_thread(rec.render_profile_png, taste, titles, trend)
    caption = t(
        user.language,
        "profile_caption",
        tags=html.escape("、".join(name for name, _ in taste.tags[:5]) or "—"),
        uploaders=html.escape("、".join(name for name, _ in taste.uploaders[:3]) or "—"),
    )
    await update.effective_message.reply_photo(png, caption=caption[:1000])
