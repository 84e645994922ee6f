"""BiliPick's entry point: build the Application from settings, register handlers and the tick, run.

Usage: BOT_TOKEN=... python bot.py   (long polling; webhook mode when WEBHOOK_URL is set)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from urllib.parse import urlsplit

from telegram import Bot, BotCommandScopeAllPrivateChats, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from delivery import callbacks
from delivery.i18n import LANGUAGES
from delivery.menu import MENU_KEY, command_menu
from delivery.ratelimit import PacedRateLimiter
from handlers import (
    account,
    blocks,
    controls,
    discover,
    feedback,
    flood,
    login,
    membership,
    picks,
    preferences,
    profile,
    recommend,
    similar,
    start,
)
from handlers.errors import on_error
from jobs.startup import check_stored_logins, require_shared_keys
from jobs.tick import schedule_ticks
from redaction import install_redaction
from services import QUEUE_KEY, SERVICES_KEY, Services, build_services
from settings import Settings, get_settings

log = logging.getLogger("bilipick")

_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

COMMANDS = (
    "recommend",
    "search",
    "popular",
    "login",
    "profile",
    "digest",
    "timezone",
    "settings",
    "logout",
    "forget",
    "privacy",
    "help",
    "start",
)
COMMANDS += ("status", "language")
COMMANDS += ("similar", "history")
COMMANDS += ("sync", "reset", "block", "blocked", "duration")


def build_application(settings: Settings, services: Services | None = None) -> Application:
    """The wired Application; SystemExit with a clear reason when it must not start."""
    token = settings.telegram.bot_token
    if token is None:
        raise SystemExit("BOT_TOKEN is not set: get one from @BotFather and export BOT_TOKEN=...")
    _check_webhook(settings)
    require_shared_keys(settings)
    services = services or build_services(settings)
    check_stored_logins(services)
    rps = settings.telegram.max_messages_per_second
    app = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .base_url(settings.telegram.base_url)
        .read_timeout(settings.telegram.read_timeout_s)
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        # Strictly spaced sends (a little under rps, and 1/s per chat) keep every one-second window
        # within the limits; a RetryAfter pauses its chat (every chat when many get one) before a
        # slot. PTB's AIORateLimiter bursts after such a pause and falls into a 429 cycle
        # (bench/digest.py: 18.5 msg/s instead of 27+).
        .rate_limiter(_rate_limiter(settings, services, rps))
        .concurrent_updates(64)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    app.bot_data[SERVICES_KEY] = services
    register_handlers(app)
    if not settings.work.distributed:  # distributed: `python -m jobs.worker` runs the work
        schedule_ticks(app, services)
    return app


def _check_webhook(settings: Settings) -> None:
    """Webhook mode without a secret lets anyone who reaches the port forge updates (/logout, ...)."""
    tg = settings.telegram
    if not tg.webhook_url:
        return
    secret = tg.webhook_secret.get_secret_value() if tg.webhook_secret else ""
    if not secret:
        raise SystemExit(
            "WEBHOOK_URL is set but WEBHOOK_SECRET is not: anyone reaching the port could forge updates. "
            "Set WEBHOOK_SECRET (1-256 characters A-Z, a-z, 0-9, _ and -) or unset WEBHOOK_URL for polling."
        )
    if not _WEBHOOK_SECRET.fullmatch(secret):
        raise SystemExit("WEBHOOK_SECRET must be 1-256 characters from A-Z, a-z, 0-9, _ and - (Telegram's rule).")


def webhook_path(webhook_url: str) -> str:
    """The path Telegram posts to ("/telegram" of https://bot.example.org/telegram); "" for the root."""
    return urlsplit(webhook_url).path.strip("/")


def _rate_limiter(settings: Settings, services: Services, rps: float) -> PacedRateLimiter:
    """Counted for /metrics; in distributed mode one pace shared by every process (delivery/pace.py)."""
    from delivery.pace import MeteredRateLimiter
    from storage.pace import DatabasePace

    shared = DatabasePace(services.db) if settings.work.distributed else None
    return MeteredRateLimiter(rps, max_retries=3, shared=shared)


def register_handlers(app: Application) -> None:
    # New messages only: editing an old /recommend (or any text) must not run it again.
    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE & new
    # Before every other handler (group -1): a user's updates past their cap go no further.
    app.add_handler(TypeHandler(Update, flood.cap_updates), group=-1)
    app.add_handler(ChatMemberHandler(membership.chat_member_changed, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(CommandHandler("start", start.start, filters=new))
    app.add_handler(CommandHandler("help", start.help_command, filters=new))
    # /login answers in groups too, to refuse there; it never sends a QR outside a private chat.
    app.add_handler(CommandHandler("login", login.login, filters=new))
    app.add_handler(CommandHandler("recommend", recommend.recommend, filters=private))
    app.add_handler(CommandHandler("search", discover.search, filters=private))
    app.add_handler(CommandHandler("popular", discover.popular, filters=private))
    app.add_handler(CommandHandler("similar", similar.similar, filters=private))
    app.add_handler(CommandHandler("history", similar.history, filters=private))
    app.add_handler(CommandHandler("digest", preferences.digest, filters=private))
    app.add_handler(CommandHandler("timezone", preferences.timezone, filters=private))
    app.add_handler(CommandHandler("settings", preferences.settings, filters=private))
    app.add_handler(CommandHandler("profile", profile.profile, filters=private))
    app.add_handler(CommandHandler("logout", account.logout, filters=private))
    app.add_handler(CommandHandler("forget", account.forget, filters=private))
    app.add_handler(CommandHandler("privacy", account.privacy, filters=new))
    app.add_handler(CommandHandler("language", controls.language, filters=private))
    app.add_handler(CommandHandler("status", controls.status, filters=private))
    app.add_handler(CommandHandler("sync", controls.sync, filters=private))
    app.add_handler(CommandHandler("reset", account.reset, filters=private))
    app.add_handler(CommandHandler("block", blocks.block, filters=private))
    app.add_handler(CommandHandler("blocked", blocks.blocked, filters=private))
    app.add_handler(CommandHandler("duration", blocks.duration, filters=private))
    app.add_handler(CallbackQueryHandler(feedback.feedback_tap, pattern=callbacks.FEEDBACK_PATTERN))
    app.add_handler(CallbackQueryHandler(login.login_button, pattern=callbacks.LOGIN_PATTERN))
    app.add_handler(CallbackQueryHandler(preferences.settings_button, pattern=callbacks.SETTINGS_PATTERN))
    app.add_handler(CallbackQueryHandler(account.forget_button, pattern=callbacks.FORGET_PATTERN))
    app.add_handler(CallbackQueryHandler(discover.page_button, pattern=callbacks.DISCOVER_PATTERN))
    app.add_handler(CallbackQueryHandler(discover.partition_button, pattern=callbacks.PARTITION_PATTERN))
    app.add_handler(CallbackQueryHandler(controls.language_button, pattern=callbacks.LANGUAGE_PATTERN))
    app.add_handler(CallbackQueryHandler(similar.similar_button, pattern=callbacks.SIMILAR_PATTERN))
    app.add_handler(CallbackQueryHandler(similar.history_button, pattern=callbacks.HISTORY_PATTERN))
    app.add_handler(CallbackQueryHandler(account.reset_button, pattern=callbacks.RESET_PATTERN))
    app.add_handler(CallbackQueryHandler(blocks.block_uploader_tap, pattern=callbacks.BLOCK_UPLOADER_PATTERN))
    app.add_handler(CallbackQueryHandler(blocks.block_tag_tap, pattern=callbacks.BLOCK_TAG_PATTERN))
    app.add_handler(CallbackQueryHandler(blocks.unblock_button, pattern=callbacks.UNBLOCK_PATTERN))
    app.add_handler(CallbackQueryHandler(blocks.blocked_page_button, pattern=callbacks.BLOCKED_PAGE_PATTERN))
    app.add_handler(CallbackQueryHandler(picks.pick_menu_tap, pattern=callbacks.PICK_MENU_PATTERN))
    app.add_handler(CallbackQueryHandler(picks.watch_later_tap, pattern=callbacks.WATCH_LATER_PATTERN))
    app.add_handler(CallbackQueryHandler(picks.more_tap, pattern=callbacks.MORE_PATTERN))
    app.add_handler(CallbackQueryHandler(feedback.feedback_tap))  # anything else: "stale", no change
    # A bilibili link or id pasted as plain text means /similar for it.
    app.add_handler(
        MessageHandler(private & filters.TEXT & ~filters.COMMAND & filters.Regex(similar.PASTED_VIDEO), similar.pasted)
    )
    # Unknown commands and free text in private chats get a hint.
    app.add_handler(MessageHandler(private & (filters.COMMAND | filters.TEXT), start.unknown))
    app.add_error_handler(on_error)
    app.bot_data[MENU_KEY] = COMMANDS  # /language sets a chat's menu from the same list


async def _post_init(app: Application) -> None:
    work = app.bot_data[SERVICES_KEY].settings.work
    if work.distributed:  # the front defers each onboarding to the workers
        from jobs.queue import build_app, ensure_queue_schema

        ensure_queue_schema(app.bot_data[SERVICES_KEY].db)
        app.bot_data[QUEUE_KEY] = await build_app(app.bot_data[SERVICES_KEY].settings).open_async()
    if work.metrics_port is not None:
        from jobs.metrics import MetricsServer

        app.bot_data["metrics"] = MetricsServer(app.bot_data[SERVICES_KEY], work.metrics_port, work.metrics_listen)
        await app.bot_data["metrics"].start()
    for lang in LANGUAGES:
        commands = command_menu(lang, COMMANDS)
        await app.bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(), language_code=None if lang == "en" else lang
        )


async def _post_stop(app: Application) -> None:
    if (metrics := app.bot_data.pop("metrics", None)) is not None:
        await metrics.stop()
    await app.bot_data[SERVICES_KEY].cancel_background()


async def _post_shutdown(app: Application) -> None:
    if (queue := app.bot_data.pop(QUEUE_KEY, None)) is not None:
        await queue.close_async()
    await app.bot_data[SERVICES_KEY].close()


def main() -> None:
    """`bilipick` / `python bot.py`: a wrong token or no network ends in one clear line, not a traceback."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    token = settings.telegram.bot_token
    install_redaction(token.get_secret_value() if token else "")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    app = build_application(settings)
    _log_where_state_lives(settings)
    try:
        # Asked once before PTB's start-up, whose own failure is a logged traceback, not a reason.
        asyncio.run(_check_telegram(settings))
    except InvalidToken:
        raise SystemExit("Telegram refused BOT_TOKEN: check it with @BotFather (/mybots → API Token).") from None
    except NetworkError as exc:
        raise SystemExit(
            f"Cannot reach Telegram at {urlsplit(settings.telegram.base_url).netloc}: {exc.message}. "
            "Check the network (or TELEGRAM_BASE_URL); `make demo` runs without one."
        ) from None
    _run(app, settings)


async def _check_telegram(settings: Settings) -> None:
    """getMe with the token: InvalidToken when Telegram refuses it, NetworkError when unreachable."""
    tg = settings.telegram
    async with Bot(tg.bot_token.get_secret_value(), base_url=tg.base_url):  # entering calls getMe
        pass


def _log_where_state_lives(settings: Settings) -> None:
    """A first start says where the database, the key and the models are (what to back up)."""
    storage = settings.storage
    key = "FERNET_KEYS" if storage.fernet_keys else str(storage.data_dir.resolve() / "secret.key")
    log.info("database: %s", redacted_url(storage.resolved_database_url))
    log.info("encryption key: %s (back it up: without it the stored logins are lost)", key)
    log.info("models: %s", storage.models_dir.resolve())


def redacted_url(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _run(app: Application, settings: Settings) -> None:
    # The ~300k objects left by imports live as long as the process, yet every full garbage collection
    # walked them: ~120 ms with the GIL held, a stall for every chat (bench/stall.py). Not any more.
    gc.freeze()
    tg = settings.telegram
    if tg.webhook_url:
        app.run_webhook(
            listen=tg.webhook_listen,
            port=tg.webhook_port,
            # Telegram posts to WEBHOOK_URL's path; TLS ends at the proxy, which forwards it unchanged.
            url_path=webhook_path(tg.webhook_url),
            webhook_url=tg.webhook_url,
            secret_token=tg.webhook_secret.get_secret_value(),  # required: build_application checked it
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES, timeout=int(tg.poll_timeout_s))


if __name__ == "__main__":
    main()
