"""👍/👎 taps: store the label, answer, show the choice on the keyboard."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from delivery import callbacks
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from handlers.common import services_of, user_lock
from handlers.picks import redraw_keyboard
from jobs.schedule import after_feedback
from storage import picks, users

log = logging.getLogger(__name__)


async def feedback_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)  # a stale tap must not re-create a user
    tap = callbacks.parse_feedback(query.data)
    shown = picks.get_shown(svc.db, tap[0]) if tap and user else None
    if shown is None or shown.user_id != user.id:
        # Malformed, foreign, or from before /forget: change nothing.
        lang = user.language if user else language_for(update.effective_user.language_code)
        await best_effort(query.answer(t(lang, "fb_stale")), "tap answer")
        return
    # One tap of a user at a time, so the keyboards are edited in the order the labels were stored.
    async with user_lock(context, "tap", user.id):
        # Stored first (the toast then tells the truth); the same button again clears the choice.
        label = picks.toggle_feedback(svc.db, user.id, shown.bvid, tap[1], svc.now())
        after_feedback(svc, user.id)
        toast = t(user.language, {1: "fb_liked", -1: "fb_disliked", 0: "fb_cleared"}[label])
        await best_effort(query.answer(toast), "tap answer")  # too late or refused: the label stays
        # The same variant the message shows (unfolded, More ▸), only the check mark moves.
        await redraw_keyboard(query, svc, user, shown, label=label)
