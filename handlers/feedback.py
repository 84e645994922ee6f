"""👍/👎 taps: answer at once, store the label, show the choice on the keyboard."""

from __future__ import annotations

import logging
import re

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from handlers.common import services_of
from handlers.i18n import language_for, t
from handlers.render import feedback_keyboard
from jobs.schedule import after_feedback
from storage import picks, users

log = logging.getLogger(__name__)

FEEDBACK_DATA = re.compile(r"^fb:(\d{1,18}):([+-]1)$")


async def feedback_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)  # a stale tap must not re-create a user
    match = FEEDBACK_DATA.match(query.data or "")
    shown = picks.get_shown(svc.db, int(match.group(1))) if match and user else None
    if shown is None or shown.user_id != user.id:
        # Malformed, foreign, or from before /forget: change nothing.
        lang = user.language if user else language_for(update.effective_user.language_code)
        await query.answer(t(lang, "fb_stale"))
        return
    current = picks.get_feedback(svc.db, user.id).get(shown.bvid, (0, 0))[0]
    tapped = int(match.group(2))
    label = 0 if tapped == current else tapped  # the same button again clears the choice
    await query.answer(t(user.language, {1: "fb_liked", -1: "fb_disliked", 0: "fb_cleared"}[label]))
    picks.set_feedback(svc.db, user.id, shown.bvid, label, svc.now())
    after_feedback(svc, user.id)
    try:
        await query.edit_message_reply_markup(feedback_keyboard(shown.id, label, user.language))
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("keyboard edit refused: %s", exc.message)
