"""/login: a QR photo whose caption follows the scan; polling runs in the background."""

from __future__ import annotations

import asyncio
import html
import io
import logging
import math

import qrcode
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bilibili import BilibiliError, QrCode, RiskControl
from delivery import callbacks
from delivery.i18n import language_for, t
from delivery.onboarding import BotOnboardingView
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from handlers.cooldown import cooldowns_of, seconds_text
from jobs.onboarding import first_sync_and_train
from services import QUEUE_KEY, Services
from storage import users
from storage.models import User

log = logging.getLogger(__name__)


def qr_png(url: str) -> bytes:
    image = qrcode.make(url, box_size=8, border=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def login(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        lang = language_for(update.effective_user.language_code)
        await update.effective_message.reply_text(t(lang, "login_refused_group"))
        return
    user = current_user(update, context)
    if user.credentials is not None and not user.session_dead:
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(t(user.language, "login_replace"), callback_data=callbacks.LOGIN_REPLACE),
                    InlineKeyboardButton(t(user.language, "login_keep"), callback_data=callbacks.LOGIN_KEEP),
                ]
            ]
        )
        text = t(user.language, "login_already", uname=html.escape(user.bili_uname or ""))
        await update.effective_message.reply_text(text, reply_markup=keyboard)
        return
    await start_login(context.application, services_of(context), user)


async def login_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """login:replace | login:keep | login:new (a fresh code after expiry)."""
    query = update.callback_query
    await best_effort(query.answer(), "tap answer")
    if not is_private(update):
        return
    user = current_user(update, context)
    if query.data == callbacks.LOGIN_KEEP:
        await _edit_text(query.message, t(user.language, "login_kept"))
        return
    if query.data not in (callbacks.LOGIN_REPLACE, callbacks.LOGIN_NEW):
        return  # not a button of ours (forged or from an old version): no QR code for it
    if query.data == callbacks.LOGIN_REPLACE:
        await _edit_text(query.message, t(user.language, "login_waiting"))
    await start_login(context.application, services_of(context), user)


async def start_login(app: Application, svc: Services, user: User) -> None:
    if not await _may_issue_code(app, svc, user):
        return
    try:
        try:
            qr = await svc.bili.generate_qr(fail_fast=True)  # the user waits: never sleep out a risk pause
        except RiskControl as exc:
            log.warning("QR generate refused: bilibili risk control, %.0fs left", exc.retry_in_s)
            minutes = max(1, math.ceil(exc.retry_in_s / 60))
            await app.bot.send_message(user.chat_id, t(user.language, "login_rate_limited", minutes=minutes))
            return
        except BilibiliError as exc:
            log.warning("QR generate failed: %s", type(exc).__name__)
            await app.bot.send_message(user.chat_id, t(user.language, "login_failed"))
            return
        message = await app.bot.send_photo(user.chat_id, qr_png(qr.url), caption=t(user.language, "login_waiting"))
        # Only the newest QR code of a user is followed.
        svc.spawn(_follow_login(app, svc, user, qr, message), name=f"login:{user.id}", user_id=user.id)
    finally:
        if not _code_live(svc, user.id):  # no code came of it: the next /login may ask at once
            cooldowns_of(app).reset(user.telegram_id, "login")


def _code_live(svc: Services, user_id: int) -> bool:
    task = svc.user_tasks.get(user_id)
    return task is not None and not task.done() and task.get_name() == f"login:{user_id}"


async def _may_issue_code(app: Application, svc: Services, user: User) -> bool:
    """A new QR code at most once per LOGIN_COOLDOWN while the last one is live: each one costs
    bilibili calls from the budget every user shares (an expired or finished code frees it)."""
    limits = cooldowns_of(app)
    if not (wait_s := limits.take(user.telegram_id, "login", svc.settings.telegram.login_cooldown_s)):
        return True
    if limits.tell_once(user.telegram_id, "login"):
        await app.bot.send_message(user.chat_id, t(user.language, "cooldown_login", seconds=seconds_text(wait_s)))
    return False


async def _follow_login(app: Application, svc: Services, user: User, qr: QrCode, message: Message) -> None:
    try:
        await _follow_code(app, svc, user, qr, message)
    finally:
        if svc.user_tasks.get(user.id) is asyncio.current_task():  # not replaced by a newer code
            cooldowns_of(app).reset(user.telegram_id, "login")


async def _follow_code(app: Application, svc: Services, user: User, qr: QrCode, message: Message) -> None:
    lang = user.language
    try:
        async for event in svc.bili.poll_login(qr):
            if event.state == "scanned":
                await _edit_caption(message, t(lang, "login_scanned"))
            elif event.state == "expired":
                again = InlineKeyboardMarkup(
                    [[InlineKeyboardButton(t(lang, "login_new_code"), callback_data=callbacks.LOGIN_NEW)]]
                )
                await _edit_caption(message, t(lang, "login_expired"), again)
                return
            elif event.state == "success" and event.credentials and event.account:
                account = event.account
                # The first sync runs right here (onboarding); the scheduled syncs keep off meanwhile.
                hold_until = svc.now() + int(svc.settings.jobs.onboarding_hold_s)
                users.link_bilibili(
                    svc.db,
                    svc.vault,
                    user.id,
                    event.credentials.to_dict(),
                    account.mid,
                    account.uname,
                    svc.now(),
                    first_sync_at=hold_until,
                )
                await _edit_caption(message, t(lang, "login_success", uname=html.escape(account.uname)))
                cooldowns_of(app).reset(user.telegram_id, "login")  # the code is used: the onboarding may run long
                await _onboard(app, svc, user)
                return
    except BilibiliError as exc:
        log.warning("QR login for user %d failed: %s", user.id, type(exc).__name__)
        await app.bot.send_message(user.chat_id, t(lang, "login_failed"))


async def _onboard(app: Application, svc: Services, user: User) -> None:
    view = BotOnboardingView(app.bot, user.chat_id, user.language)
    if not svc.settings.work.distributed:
        await first_sync_and_train(svc, user.id, view)
        return
    # Distributed: the front answers Telegram only. It shows the status message at once and a worker
    # runs the first sync and training (the `onboard` queue), editing that message; if no worker ever
    # does, ONBOARDING_HOLD lets the scheduled sync take over.
    from jobs.queue import defer_onboarding

    await view.status("sync_started")
    try:
        await defer_onboarding(app.bot_data[QUEUE_KEY], user.id, view.message_id)
    except Exception as exc:  # noqa: BLE001 - the login is stored; the scheduled sync follows the hold
        log.warning("onboarding of user %d not deferred: %s", user.id, type(exc).__name__)


async def _edit_caption(message: Message, caption: str, markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        await message.edit_caption(caption=caption, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("caption edit refused: %s", exc.message)
    except TelegramError as exc:
        log.warning("caption edit failed: %s", exc)


async def _edit_text(message: Message | None, text: str) -> None:
    if message is None:
        return
    try:
        await message.edit_text(text)
    except TelegramError as exc:
        log.info("text edit skipped: %s", exc)
