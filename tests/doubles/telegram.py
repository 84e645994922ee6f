"""A faithful Telegram Bot API double: a real aiohttp server on 127.0.0.1.

A real PTB ``Bot``/``Application`` talks to it through
``ApplicationBuilder().token(tg.token).base_url(tg.base_url)``. It answers with Telegram's
envelope (``{"ok": true, "result": ...}``) and object shapes, and refuses what Telegram refuses
(see ``/work/shared/reference/telegram.md`` §1.3 for the descriptions used).

    async with TelegramDouble(token="123:ABC") as tg:
        alice = tg.user(1001, first_name="Alice", language_code="en")
        await tg.send_text(alice, "/start")            # queues an Update for getUpdates
        reply = await tg.wait_for(lambda m: "Welcome" in m.content, chat=alice)
        qid = await tg.tap(alice, reply, reply.callback_data[0])
        answer = await tg.wait_answer(qid)

Everything runs on the event loop that entered the context manager. Python-side helpers are
synchronous unless they wait (``send_text``/``tap`` are ``async`` only for symmetry and to yield).
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import io
import itertools
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web

from tests.doubles.telegram_html import EntityParseError, parse_html, utf16_len

__all__ = ["Call", "SentMessage", "TelegramDouble"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10 * 1024 * 1024
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)  # every type except chat_member, message_reaction, message_reaction_count
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "user_id",
        "cache_time",
        "reply_to_message_id",
        "message_thread_id",
        "max_connections",
    }
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "has_spoiler",
        "show_caption_above_media",
        "allow_paid_broadcast",
        "disable_web_page_preview",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)
_JSON_PARAM_ERRORS = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "commands": "can't parse commands JSON object",
    "scope": "can't parse BotCommandScope JSON object",
    "allowed_updates": "can't parse allowed_updates JSON object",
}


class ApiError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, ...}`` with HTTP status = code."""

    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# URL buttons Telegram opens: http(s) (a bare "example.org" is taken as http) and tg:// links.
_BUTTON_URL_SCHEMES = frozenset({"", "http", "https", "tg"})


def _check_button_url(url: Any) -> None:
    """Refuse a URL button as Telegram does: empty, or a protocol it does not open (javascript:, file:, ...)."""
    text = str(url).strip() if isinstance(url, str) else ""
    if not text:
        raise _bad("BUTTON_URL_INVALID")
    # A scheme is what comes before the first ":" unless a port follows it ("example.org:8080/x").
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)", text)
    if (match.group(1).lower() if match else "") not in _BUTTON_URL_SCHEMES:
        raise _bad(f"inline keyboard button URL '{text}' is invalid: Unsupported URL protocol")


class Call(NamedTuple):
    """One HTTP request the bot made: canonical method name, decoded params, monotonic time."""

    method: str
    params: dict
    time: float


@dataclass
class SentMessage:
    """A message the bot sent, in its *current* state (edits applied), plus its history.

    ``text``/``caption`` are what the user sees (after HTML parsing); ``raw`` is the string as
    the bot sent it (current version). ``photo`` is the uploaded bytes, or the file_id/URL string
    the bot passed (None for uploads if ``keep_photo_bytes=False``); ``photo_file_id`` is the file_id the double assigned to the largest size.
    ``edits`` holds one dict per applied edit: ``{"method", "time", "text"|"caption", "raw",
    "parse_mode", "reply_markup"}``.
    """

    chat_id: int
    message_id: int
    method: str
    text: str | None
    caption: str | None
    raw: str | None
    parse_mode: str | None
    entities: list[dict]
    reply_markup: dict | None
    photo: bytes | str | None
    photo_file_id: str | None
    date: int
    time: float
    message: dict
    edits: list[dict] = field(default_factory=list)
    deleted: bool = False
    seq: int = 0  # change sequence number of the latest send/edit (see TelegramDouble.mark)
    photo_sha256: str | None = None  # of the uploaded bytes (kept even if bytes are not)
    photo_size: int | None = None  # uploaded byte count
    silent: bool = False  # sent with disable_notification: the phone does not ring

    @property
    def content(self) -> str:
        """Text or caption (visible, after entity parsing); '' if neither."""
        if self.text is not None:
            return self.text
        return self.caption or ""

    @property
    def buttons(self) -> list[dict]:
        """Inline keyboard buttons, flattened row by row."""
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    @property
    def is_photo(self) -> bool:
        return self.photo_file_id is not None


@dataclass
class _Query:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: dict | None = None
    attempts: int = 0


@dataclass
class _Fault:
    method: str | None
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    times: int | None
    # "reset" / "delay": the call is carried out (the message arrives), then the connection is
    # dropped without an answer, or the answer comes only after `delay_s` (the client times out).
    after: str | None = None
    delay_s: float = 0.0


def _to_bool(v: Any) -> Any:
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0", ""):
            return False
    return v


def _normalize_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode form/query strings the way Telegram types each parameter."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in _JSON_PARAMS:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _bad(_JSON_PARAM_ERRORS.get(key, f"can't parse {key} JSON object")) from None
            elif key in _INT_PARAMS:
                try:
                    value = int(value)
                except ValueError:
                    if key != "chat_id":  # chat_id may be "@username"
                        raise _bad(f"invalid {key} specified") from None
            elif key in _FLOAT_PARAMS:
                try:
                    value = float(value)
                except ValueError:
                    raise _bad(f"invalid {key} specified") from None
            elif key in _BOOL_PARAMS:
                value = _to_bool(value)
        params[key] = value
    return params


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


class TelegramDouble:
    """Fake Bot API server. See module docstring; public API is documented per member."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        bot_username: str = "bilipick_bot",
        bot_first_name: str = "BiliPick",
        answer_deadline: float = 10.0,
        strict_chats: bool = False,
        strict_images: bool = False,
        flood_limits: tuple[int, int] | None = None,
        chat_retry_after: int = 1,
        keep_photo_bytes: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """
        token: the only token accepted (others → 401 Unauthorized).
        answer_deadline: seconds after a tap within which answerCallbackQuery succeeds.
        strict_chats: if True, sending to a chat id the double never heard of → 400
            "chat not found"; if False (default) such ids are treated as users who started the
            bot (an implicit private chat is created). Users made with ``tg.user()`` that never
            sent anything always get 403 "bot can't initiate conversation with a user".
        strict_images: if True, uploaded bytes PIL can't decode → 400 IMAGE_PROCESS_FAILED;
            otherwise they are accepted with a nominal 320x320 size.
        flood_limits: ``(global_per_second, per_chat_per_second)``; when set, sends beyond these
            counts within the last second get 429 "Too Many Requests: retry after N": N = 1 over the
            global limit, ``chat_retry_after`` over one chat's (Telegram's per-chat waits run longer).
        keep_photo_bytes: set False in big benchmarks so uploads are not held in memory
            (records then keep only ``photo_sha256``/``photo_size``).
        """
        self.token = token
        try:
            bot_id = int(token.split(":", 1)[0])
        except ValueError:
            bot_id = 7000000001
        self.bot_user: dict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.answer_deadline = answer_deadline
        self.strict_chats = strict_chats
        self.strict_images = strict_images
        self.flood_limits = flood_limits
        self.chat_retry_after = chat_retry_after
        self.keep_photo_bytes = keep_photo_bytes
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        # Routes served beside the Bot API (the demo's chat page): they come before the catch-all.
        self.extra_routes: list[web.AbstractRouteDef] = []

        # public records
        self.calls: list[Call] = []
        self.errors: list[dict] = []  # {"method","params","error_code","description","time","retry_after"}
        self.lost_answers: list[Call] = []  # calls carried out whose answer was reset or delayed
        self.sent: list[SentMessage] = []
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id)
        self.chat_actions: list[tuple[int, str, float]] = []  # (chat_id, action, time)
        self.webhook: dict | None = None  # last setWebhook params, None after deleteWebhook
        self.command_sets: dict[tuple[str, str], list[dict]] = {}  # (scope json, lang) -> cmds

        # state
        self._users: dict[int, dict] = {}
        self._chats: dict[int, dict] = {}
        self._known: set[int] = set()
        self._unknown: set[int] = set()  # explicitly marked "never started"
        self._blocked: set[int] = set()
        self._messages: dict[int, dict[int, dict]] = {}  # chat -> message_id -> Message JSON
        self._records: dict[tuple[int, int], SentMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, dict] = {}  # file_id -> {"data","url","width","height","size"}
        self._file_counter = itertools.count(1)
        self._queries: dict[str, _Query] = {}
        self._faults: list[_Fault] = []
        self._updates: deque[dict] = deque()
        self._next_update_id = 815000001
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        # change log for wait_for: list of (seq, record)
        self._seq = 0
        self._changes: list[SentMessage] = []  # _changes[k] was appended when seq became k+1
        self._chat_changes: dict[int, list[tuple[int, SentMessage]]] = {}
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._change_event = asyncio.Event()
        self._answer_event = asyncio.Event()
        # send timestamps for rate checks
        self._send_times: list[float] = []
        self._chat_send_times: dict[int, list[float]] = {}

        self._methods: dict[str, tuple[str, Callable]] = {}
        for name in (
            "getMe",
            "deleteWebhook",
            "setWebhook",
            "getWebhookInfo",
            "getUpdates",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "sendMessage",
            "sendPhoto",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "answerCallbackQuery",
            "deleteMessage",
            "sendChatAction",
            "getFile",
            "close",
            "logOut",
        ):
            self._methods[name.lower()] = (name, getattr(self, f"_m_{name}"))

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> TelegramDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.extra_routes)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._closing = True
        self._notify_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self._host}:{self.port}/file/bot"

    # ------------------------------------------------------------------ HTTP layer
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot") or path.count("/") != 2:
            return self._error_response(ApiError(404, "Not Found"))
        token, _, method = path[len("/bot") :].partition("/")
        if token != self.token:
            return self._error_response(ApiError(401, "Unauthorized"))
        entry = self._methods.get(method.lower())
        if entry is None:
            return self._error_response(ApiError(404, "Not Found"))
        name, handler = entry
        now = time.monotonic()
        params: dict[str, Any] = {}
        try:
            try:
                raw, files = await self._read_params(request)
                params = _normalize_params(raw)
                params.update(files)
            finally:
                self.calls.append(Call(name, params, now))
            self._check_faults(name, params)
            after = self._take_after_fault(name, params)
            result = await handler(params)
            if after is not None:
                self.lost_answers.append(Call(name, params, now))
                if after.after == "reset":
                    if request.transport is not None:
                        request.transport.abort()  # the client sees the connection drop, no answer
                    return web.Response(status=500)  # never reaches the client
                await asyncio.sleep(after.delay_s)
        except ApiError as err:
            self.errors.append(
                {
                    "method": name,
                    "params": params,
                    "error_code": err.code,
                    "description": err.description,
                    "time": now,
                    "retry_after": (err.parameters or {}).get("retry_after"),
                }
            )
            return self._error_response(err)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error_response(err: ApiError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": err.code,
            "description": err.description,
        }
        if err.parameters:
            body["parameters"] = err.parameters
        return web.json_response(body, status=err.code)

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad("can't parse JSON object") from None
                raw.update(body)
            elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files["__file__" + key] = {
                            "data": value.file.read(),
                            "filename": value.filename,
                            "content_type": value.content_type,
                        }
                    else:
                        raw[key] = value
        return raw, files

    def _serve_file(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return self._error_response(ApiError(401, "Unauthorized"))
        for info in self._files.values():
            if info.get("path") == file_path and info.get("data") is not None:
                return web.Response(body=info["data"], content_type="application/octet-stream")
        return self._error_response(ApiError(404, "Not Found"))

    # ------------------------------------------------------------------ fault injection
    def inject(
        self,
        method: str | None,
        status: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if None; case-insensitive),
        optionally only those with this ``chat_id``, fail with ``status``/``description``.
        ``retry_after`` adds ``parameters.retry_after`` (PTB then raises RetryAfter whatever
        the status). ``times=None`` means until ``clear_faults()``. Default descriptions:
        429 "Too Many Requests: retry after N", 502 "Bad Gateway", 403 "Forbidden: bot was
        blocked by the user", 400 "Bad Request", 500 "Internal Server Error".
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after or 1}",
                502: "Bad Gateway",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request",
                500: "Internal Server Error",
                409: "Conflict",
            }.get(status, f"Error {status}")
        if status == 429 and retry_after is None:
            m = re.search(r"retry after (\d+)", description)
            retry_after = int(m.group(1)) if m else 1
        self._faults.append(
            _Fault(
                method.lower() if method else None,
                status,
                description,
                retry_after,
                chat_id,
                times,
            )
        )

    def inject_reset(self, method: str | None, *, chat_id: int | None = None, times: int | None = 1) -> None:
        """The next ``times`` calls of ``method`` are carried out (a message is sent, an edit applied),
        then the connection is reset before the answer: the client gets a network error although
        Telegram accepted the request. Each such call is listed in ``lost_answers``."""
        self._faults.append(_Fault(method.lower() if method else None, 0, "", None, chat_id, times, "reset"))

    def inject_delay(
        self, method: str | None, seconds: float, *, chat_id: int | None = None, times: int | None = 1
    ) -> None:
        """The next ``times`` calls of ``method`` are carried out, but answered only after ``seconds``
        (longer than the client's read timeout: it sees TimedOut for a request that succeeded)."""
        self._faults.append(_Fault(method.lower() if method else None, 0, "", None, chat_id, times, "delay", seconds))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _matching_fault(self, name: str, params: dict, after: bool) -> _Fault | None:
        low = name.lower()
        for fault in self._faults:
            if (fault.after is not None) != after:
                continue
            if fault.method is not None and fault.method != low:
                continue
            if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    def _check_faults(self, name: str, params: dict) -> None:
        if not self._faults:
            return
        fault = self._matching_fault(name, params, after=False)
        if fault is not None:
            parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
            raise ApiError(fault.status, fault.description, parameters)

    def _take_after_fault(self, name: str, params: dict) -> _Fault | None:
        return self._matching_fault(name, params, after=True) if self._faults else None

    # ------------------------------------------------------------------ users and chats
    def user(
        self,
        id: int,  # noqa: A002 - Telegram's field name
        first_name: str = "Alice",
        *,
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
    ) -> dict:
        """Register a human user; returns the Telegram ``User`` JSON dict. The private chat is
        *not* known until the user sends something (or ``known_chat(id)``)."""
        user: dict[str, Any] = {"id": id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[id] = user
        chat: dict[str, Any] = {"id": id, "type": "private", "first_name": first_name}
        if last_name:
            chat["last_name"] = last_name
        if username:
            chat["username"] = username
        self._chats[id] = chat
        return user

    def group(self, chat_id: int, title: str = "Group", *, type: str = "group") -> dict:  # noqa: A002
        """Register a group chat the bot is a member of (known immediately); returns Chat JSON."""
        chat = {"id": chat_id, "type": type, "title": title}
        self._chats[chat_id] = chat
        self._known.add(chat_id)
        return chat

    def known_chat(self, chat_id: int, known: bool = True) -> None:
        """Override: mark a chat as started (True) or as never started (False)."""
        if known:
            self._known.add(chat_id)
            self._unknown.discard(chat_id)
        else:
            self._known.discard(chat_id)
            self._unknown.add(chat_id)

    def block(self, user_id: int) -> dict:
        """The user blocks the bot: later sends → 403 "Forbidden: bot was blocked by the user";
        queues a ``my_chat_member`` update (member → kicked). Returns the Update dict."""
        self._blocked.add(user_id)
        return self._queue_member_update(user_id, "member", "kicked")

    def unblock(self, user_id: int) -> dict:
        """The user unblocks (restarts) the bot; queues ``my_chat_member`` (kicked → member)."""
        self._blocked.discard(user_id)
        self._known.add(user_id)
        return self._queue_member_update(user_id, "kicked", "member")

    def _queue_member_update(self, user_id: int, old: str, new: str) -> dict:
        user = self._users.get(user_id) or self.user(user_id, f"User{user_id}")
        chat = self._chats[user_id]

        def member(status: str) -> dict:
            d: dict[str, Any] = {"status": status, "user": dict(self.bot_user)}
            if status == "kicked":
                d["until_date"] = 0
            return d

        payload = {
            "chat": dict(chat),
            "from": dict(user),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self._queue_update("my_chat_member", payload)

    def _user_of(self, user: dict | int) -> dict:
        if isinstance(user, dict):
            uid = user["id"]
            if uid not in self._users:
                self._users[uid] = dict(user)
                self._chats.setdefault(uid, {"id": uid, "type": "private", "first_name": user.get("first_name", "")})
            return self._users[uid]
        return self._users.get(user) or self.user(user, f"User{user}")

    @staticmethod
    def _chat_id_of(chat: dict | int | SentMessage | None) -> int | None:
        if chat is None:
            return None
        if isinstance(chat, SentMessage):
            return chat.chat_id
        if isinstance(chat, dict):
            return chat["id"]
        return int(chat)

    # ------------------------------------------------------------------ inbound (user side)
    def _notify_pollers(self) -> None:
        event = self._update_event
        self._update_event = asyncio.Event()
        event.set()

    def _queue_update(self, kind: str, payload: dict) -> dict:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        if kind in self._allowed_updates:
            self._updates.append(update)
            self._notify_pollers()
        return update

    async def send_text(
        self,
        user: dict | int,
        text: str,
        chat: dict | int | None = None,
        *,
        reply_to: SentMessage | None = None,
    ) -> dict:
        """The user sends ``text`` (in their private chat, or ``chat`` e.g. a ``tg.group()``).
        Queues an Update; commands get a ``bot_command`` entity. Returns the Message dict.
        ``reply_to``: a bot message the user replies to (its Message rides along as
        ``reply_to_message``, as Telegram sends it).
        A user who had blocked the bot unblocks first (a my_chat_member "member" update)."""
        u = self._user_of(user)
        chat_id = self._chat_id_of(chat) if chat is not None else u["id"]
        if chat_id in self._blocked:
            self.unblock(chat_id)  # a user must unblock (Restart) before writing again
        chat_json = self._chats.get(chat_id) or {"id": chat_id, "type": "private"}
        self._known.add(chat_id)
        self._unknown.discard(chat_id)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(u),
            "chat": dict(chat_json),
            "date": int(time.time()),
            "text": text,
        }
        if reply_to is not None:
            if (reply_to.chat_id, reply_to.message_id) not in self._records:
                raise AssertionError(f"reply_to: message {reply_to.message_id} is not a bot message")
            message["reply_to_message"] = json.loads(json.dumps(reply_to.message))
        if text.startswith("/"):
            command = text.split(None, 1)[0] if text.strip() else text
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        self._queue_update("message", message)
        await asyncio.sleep(0)
        return message

    async def edit_text(self, user: dict | int, message: dict, text: str) -> dict:
        """The user edits one of their messages (as returned by ``send_text``): queues an
        ``edited_message`` Update carrying the new text and ``edit_date``."""
        u = self._user_of(user)
        edited = dict(message, text=text, edit_date=int(time.time()), **{"from": dict(u)})
        edited.pop("entities", None)
        if text.startswith("/"):
            command = text.split(None, 1)[0] if text.strip() else text
            edited["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        self._messages.setdefault(edited["chat"]["id"], {})[edited["message_id"]] = edited
        self._queue_update("edited_message", edited)
        await asyncio.sleep(0)
        return edited

    async def tap(
        self,
        user: dict | int,
        message: SentMessage | dict | int,
        callback_data: str,
        *,
        chat: dict | int | None = None,
        check_button: bool = True,
    ) -> str:
        """The user taps an inline button of a bot message (a SentMessage, a Message dict, or a
        message_id in ``chat``/the user's chat). Queues a callback_query Update; returns the
        query id. With ``check_button`` the data must be on the message's current keyboard."""
        u = self._user_of(user)
        if isinstance(message, SentMessage):
            chat_id, message_id = message.chat_id, message.message_id
        elif isinstance(message, dict):
            chat_id, message_id = message["chat"]["id"], message["message_id"]
        else:
            chat_id = self._chat_id_of(chat) if chat is not None else u["id"]
            message_id = int(message)
        record = self._records.get((chat_id, message_id))
        if record is None or record.deleted:
            raise AssertionError(f"tap: message {message_id} in chat {chat_id} is not a live bot message")
        if check_button and callback_data not in record.callback_data:
            raise AssertionError(
                f"tap: {callback_data!r} is not on message {message_id}'s keyboard (buttons: {record.callback_data})"
            )
        qid = str(random.getrandbits(63))
        while qid in self._queries:
            qid = str(random.getrandbits(63))
        self._queries[qid] = _Query(qid, u["id"], chat_id, message_id, callback_data, time.monotonic())
        payload = {
            "id": qid,
            "from": dict(u),
            "message": json.loads(json.dumps(record.message)),
            "chat_instance": str(-(abs(hash((chat_id, self.bot_user["id"]))) % 10**18)),
            "data": callback_data,
        }
        self._queue_update("callback_query", payload)
        await asyncio.sleep(0)
        return qid

    def answer_for(self, query_id: str) -> dict | None:
        """The first successful answer: ``{"callback_query_id", "text", "show_alert", "url",
        "cache_time", "latency", "time"}`` (latency = seconds since the tap), or None."""
        q = self._queries.get(query_id)
        return q.answer if q else None

    async def wait_answer(self, query_id: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.answer_for(query_id)
            if answer is not None:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                q = self._queries.get(query_id)
                raise AssertionError(
                    f"callback query {query_id} not answered within {timeout}s "
                    f"(attempts: {q.attempts if q else 'unknown id'})"
                )
            event = self._answer_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    @property
    def pending_updates(self) -> list[dict]:
        """Updates queued and not yet confirmed by getUpdates offset."""
        return list(self._updates)

    # ------------------------------------------------------------------ observation
    def messages(self, chat: dict | int) -> list[dict]:
        """Current Message JSON of every non-deleted message in a chat (both sides), in order."""
        chat_id = self._chat_id_of(chat)
        return [dict(m) for m in self._messages.get(chat_id, {}).values()]  # type: ignore[arg-type]

    def sent_to(self, chat: dict | int) -> list[SentMessage]:
        """SentMessage records for one chat, in send order (deleted ones included)."""
        chat_id = self._chat_id_of(chat)
        return list(self._sent_by_chat.get(chat_id, []))  # type: ignore[arg-type]

    def mark(self) -> int:
        """Current change sequence; pass as ``since=`` to wait_for to ignore older changes."""
        return self._seq

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool] = lambda m: True,
        timeout: float = 10.0,
        *,
        chat: dict | int | None = None,
        since: int = 0,
    ) -> SentMessage:
        """Wait for a bot message (new or edited after ``since``, optionally in ``chat``) whose
        current state satisfies ``predicate``; returns its SentMessage. AssertionError on
        timeout, listing what the chat (or, without ``chat``, the bot overall) sent."""
        chat_id = self._chat_id_of(chat)
        deadline = time.monotonic() + timeout
        if chat_id is None:
            log: list = self._changes
            pos = max(0, min(since, len(log)))
        else:
            log = self._chat_changes.setdefault(chat_id, [])
            pos = bisect.bisect_right(log, since, key=lambda item: item[0])
        while True:
            while pos < len(log):
                record = log[pos] if chat_id is None else log[pos][1]
                pos += 1
                if record.deleted:
                    continue
                if predicate(record):
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._describe_timeout(timeout, chat_id))
            event = self._change_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    def _describe_timeout(self, timeout: float, chat_id: int | None) -> str:
        records = self.sent_to(chat_id) if chat_id is not None else self.sent[-20:]
        where = f"chat {chat_id}" if chat_id is not None else "any chat (last 20 shown)"
        lines = [f"no matching bot message in {where} within {timeout}s; received:"]
        for r in records:
            flags = " [deleted]" if r.deleted else ""
            edits = f" ({len(r.edits)} edits)" if r.edits else ""
            lines.append(f"  #{r.message_id} {r.method}{edits}{flags}: {r.content!r} buttons={r.callback_data}")
        if not records:
            lines.append("  (nothing)")
        recent_errors = [e for e in self.errors if e["method"] != "getUpdates"][-5:]
        if recent_errors:
            lines.append("recent API errors:")
            lines += [f"  {e['method']}: {e['error_code']} {e['description']}" for e in recent_errors]
        return "\n".join(lines)

    def _changed(self, record: SentMessage) -> None:
        self._seq += 1
        record.seq = self._seq
        self._changes.append(record)
        self._chat_changes.setdefault(record.chat_id, []).append((self._seq, record))
        event = self._change_event
        self._change_event = asyncio.Event()
        event.set()

    # ------------------------------------------------------------------ rate checks
    @staticmethod
    def _max_in_window(times: list[float], window: float) -> int:
        best = 0
        lo = 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def max_rate_global(self, window: float = 1.0, since: float = 0.0) -> int:
        """Most successful sends (sendMessage/sendPhoto) within any ``window`` seconds (from ``since``)."""
        return self._max_in_window([t for t in self._send_times if t >= since], window)

    def max_rate_per_chat(self, window: float = 1.0) -> int:
        """Most successful sends to one chat within any ``window`` seconds (worst chat)."""
        return max(
            (self._max_in_window(ts, window) for ts in self._chat_send_times.values()),
            default=0,
        )

    @property
    def send_log(self) -> list[tuple[float, int]]:
        """(monotonic time, chat_id) of every successful send, in order."""
        return [(r.time, r.chat_id) for r in self.sent]

    # ------------------------------------------------------------------ helpers for methods
    def _new_message_id(self, chat_id: int) -> int:
        mid = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = mid
        return mid

    def _require_chat(self, params: dict, *, sending: bool = True) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if not isinstance(chat_id, int):
            raise _bad("chat not found")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id not in self._known:
            if chat_id in self._unknown or (chat_id in self._users and chat_id > 0):
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            if chat_id not in self._chats:
                if self.strict_chats or not sending:
                    raise _bad("chat not found")
                self._chats[chat_id] = {
                    "id": chat_id,
                    "type": "private",
                    "first_name": f"User{chat_id}",
                }
            self._known.add(chat_id)
        return chat_id

    def _check_flood(self, chat_id: int) -> None:
        if not self.flood_limits:
            return
        global_limit, chat_limit = self.flood_limits
        now = time.monotonic()
        times = self._send_times
        if len(times) - bisect.bisect_right(times, now - 1.0) >= global_limit:
            raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        ctimes = self._chat_send_times.get(chat_id, [])
        if len(ctimes) - bisect.bisect_right(ctimes, now - 1.0) >= chat_limit:
            wait = self.chat_retry_after
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

    @property
    def retry_afters(self) -> list[tuple[float, int, int]]:
        """(monotonic time, chat_id, retry_after s) of every 429 answered to a send, in order: the
        pauses Telegram asked for."""
        return [
            (e["time"], e["params"].get("chat_id"), e["retry_after"])
            for e in self.errors
            if e["retry_after"] is not None and e["method"].startswith("send")
        ]

    @staticmethod
    def _parse_text(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict]]:
        mode = (parse_mode or "").strip()
        if mode == "":
            if entities is not None and not isinstance(entities, list):
                raise _bad("can't parse entities JSON object")
            return text, list(entities or [])
        low = mode.lower()
        if low == "html":
            try:
                return parse_html(text)
            except EntityParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        if low in ("markdownv2", "markdown"):
            # Not modelled: escapes are removed, entities are not produced.
            return re.sub(r"\\(.)", r"\1", text), []
        raise _bad(f"unsupported parse_mode {mode!r}")

    @staticmethod
    def _validate_markup(markup: Any) -> dict | None:
        """Validate reply_markup; returns what Message.reply_markup echoes (inline only)."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
                    actions = [k for k in button if k != "text"]
                    if not actions:
                        raise _bad("Text buttons are not allowed in the inline keyboard")
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if not isinstance(data, str) or not (1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA):
                            raise _bad("BUTTON_DATA_INVALID")
                    if "url" in button:
                        _check_button_url(button["url"])
            return {"inline_keyboard": rows}
        if any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            return None  # accepted, but Message.reply_markup only carries inline keyboards
        raise _bad("can't parse reply keyboard markup JSON object")

    def _record_send(self, record: SentMessage) -> None:
        self._messages.setdefault(record.chat_id, {})[record.message_id] = record.message
        self._records[(record.chat_id, record.message_id)] = record
        self.sent.append(record)
        self._sent_by_chat.setdefault(record.chat_id, []).append(record)
        self._send_times.append(record.time)
        self._chat_send_times.setdefault(record.chat_id, []).append(record.time)
        self._changed(record)

    def _base_message(self, chat_id: int, message_id: int, date: int) -> dict:
        return {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "chat": dict(self._chats.get(chat_id) or {"id": chat_id, "type": "private"}),
            "date": date,
        }

    # ------------------------------------------------------------------ Bot API methods
    async def _m_getMe(self, params: dict) -> dict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_deleteWebhook(self, params: dict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    async def _m_setWebhook(self, params: dict) -> bool:
        url = params.get("url", "")
        if url and not str(url).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("secret token contains unallowed characters")
        self.webhook = dict(params) if url else None
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, params: dict) -> dict:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _m_getUpdates(self, params: dict) -> list[dict]:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = params.get("limit", 100)
        if not isinstance(limit, int) or limit < 1:
            limit = 100
        limit = min(limit, 100)
        timeout = params.get("timeout", 0) or 0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        if isinstance(offset, int) and offset != 0:
            if offset > 0:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            else:
                while len(self._updates) > -offset:
                    self._updates.popleft()
        # a newer getUpdates terminates an older one that is still waiting
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify_pollers()
        deadline = time.monotonic() + float(timeout)
        while not self._updates and not self._closing and timeout > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = self._update_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            )
        return list(itertools.islice(self._updates, limit))

    def _scope_key(self, params: dict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        valid = {
            "default",
            "all_private_chats",
            "all_group_chats",
            "all_chat_administrators",
            "chat",
            "chat_administrators",
            "chat_member",
        }
        if scope["type"] not in valid:
            raise _bad("wrong parameter scope in request")
        lang = params.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", str(lang)):
            raise _bad("invalid language code specified")
        return json.dumps(scope, sort_keys=True), str(lang)

    async def _m_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        clean = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = cmd.get("command")
            desc = cmd.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.match(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(desc, str) or not 1 <= len(desc) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": desc})
        key = self._scope_key(params)
        if clean:
            self.command_sets[key] = clean
        else:
            self.command_sets.pop(key, None)
        return True

    async def _m_getMyCommands(self, params: dict) -> list[dict]:
        return list(self.command_sets.get(self._scope_key(params), []))

    async def _m_deleteMyCommands(self, params: dict) -> bool:
        self.command_sets.pop(self._scope_key(params), None)
        return True

    def my_commands(self, scope: dict | None = None, language_code: str = "") -> list[dict]:
        """Commands set for a scope (default scope if None) and language ('' = all languages)."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        return list(self.command_sets.get(key, []))

    async def _m_sendMessage(self, params: dict) -> dict:
        chat_id = self._require_chat(params)
        text = params.get("text")
        if text is None or not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain, entities = self._parse_text(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        self._check_flood(chat_id)
        now = time.monotonic()
        date = int(time.time())
        mid = self._new_message_id(chat_id)
        message = self._base_message(chat_id, mid, date)
        message["text"] = plain
        if entities:
            message["entities"] = entities
        if markup:
            message["reply_markup"] = markup
        record = SentMessage(
            chat_id=chat_id,
            message_id=mid,
            method="sendMessage",
            text=plain,
            caption=None,
            raw=text,
            parse_mode=params.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            photo=None,
            photo_file_id=None,
            date=date,
            time=now,
            message=message,
            silent=bool(params.get("disable_notification")),
        )
        self._record_send(record)
        return message

    def _store_photo(self, data: bytes | None, url: str | None) -> tuple[list[dict], dict]:
        width, height = 320, 320
        if data is not None:
            size = _image_size(data)
            if size is None:
                if self.strict_images:
                    raise _bad("IMAGE_PROCESS_FAILED")
            else:
                width, height = size
                if width + height > 10000 or max(width, height) > 20 * min(width, height):
                    raise _bad("PHOTO_INVALID_DIMENSIONS")
        n = next(self._file_counter)
        sizes = []
        file_size = len(data) if data is not None else 20000
        targets = [90, 320, 800, 1280]
        longest = max(width, height)
        for i, target in enumerate(targets):
            if target >= longest and i > 0 and targets[i - 1] >= longest:
                break
            scale = min(1.0, target / longest)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            fid = f"AgACAgUAAxkDAAI{n:06d}{i}AA"
            info = {
                "data": data if scale == 1.0 else None,
                "url": url,
                "width": w,
                "height": h,
                "size": file_size if scale == 1.0 else max(1, int(file_size * scale * scale)),
                "path": f"photos/file_{n}_{i}.jpg",
                "unique": f"AQAD{n:06d}{i}",
            }
            self._files[fid] = info
            sizes.append(
                {
                    "file_id": fid,
                    "file_unique_id": info["unique"],
                    "width": w,
                    "height": h,
                    "file_size": info["size"],
                }
            )
            if scale == 1.0:
                break
        largest = self._files[sizes[-1]["file_id"]]
        largest["data"] = data
        return sizes, largest

    async def _m_sendPhoto(self, params: dict) -> dict:
        chat_id = self._require_chat(params)
        photo_param = params.get("photo")
        upload = params.get("__file__photo")
        if isinstance(photo_param, str) and photo_param.startswith("attach://"):
            upload = params.get("__file__" + photo_param[len("attach://") :])
            if upload is None:
                raise _bad("wrong file identifier/HTTP URL specified")
        data: bytes | None = None
        url: str | None = None
        reuse: dict | None = None
        digest: str | None = None
        if upload is not None:
            data = upload["data"]
            if not data:
                raise _bad("file must be non-empty")
            if len(data) > MAX_PHOTO_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            digest = hashlib.sha256(data).hexdigest()
            if not self.keep_photo_bytes:
                upload["data"] = f"<{len(data)} bytes sha256={digest}>"
        elif isinstance(photo_param, str) and photo_param:
            if re.match(r"https?://", photo_param):
                url = photo_param
            elif photo_param in self._files:
                reuse = self._files[photo_param]
            else:
                raise _bad("wrong file identifier/HTTP URL specified")
        else:
            raise _bad("there is no photo in the request")
        caption = params.get("caption") or ""
        plain, entities = self._parse_text(caption, params.get("parse_mode"), params.get("caption_entities"))
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        self._check_flood(chat_id)
        if reuse is not None:
            photo_sizes = [dict(p) for p in reuse.get("sizes") or [self._photo_size_of(photo_param)]]
            largest_id = photo_param
            digest = reuse.get("sha256")
        else:
            photo_sizes, largest = self._store_photo(data, url)
            largest_id = photo_sizes[-1]["file_id"]
            largest["sha256"] = digest
            largest["sizes"] = [dict(p) for p in photo_sizes]
            if not self.keep_photo_bytes:
                largest["data"] = None
        size = len(data) if data is not None else None
        now = time.monotonic()
        date = int(time.time())
        mid = self._new_message_id(chat_id)
        message = self._base_message(chat_id, mid, date)
        message["photo"] = photo_sizes
        if plain:
            message["caption"] = plain
        if entities:
            message["caption_entities"] = entities
        if markup:
            message["reply_markup"] = markup
        record = SentMessage(
            chat_id=chat_id,
            message_id=mid,
            method="sendPhoto",
            text=None,
            caption=plain,
            raw=caption,
            parse_mode=params.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            photo=((data if self.keep_photo_bytes else None) if upload is not None else photo_param),
            photo_file_id=largest_id,
            date=date,
            time=now,
            message=message,
            silent=bool(params.get("disable_notification")),
            photo_sha256=digest,
            photo_size=size,
        )
        self._record_send(record)
        return message

    def _photo_size_of(self, file_id: str) -> dict:
        info = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": info["unique"],
            "width": info["width"],
            "height": info["height"],
            "file_size": info["size"],
        }

    def photo_source(self, file_id: str) -> tuple[bytes | None, str | None]:
        """(uploaded bytes, URL the bot passed) of a photo file_id the double issued; (None, None) if unknown."""
        info = self._files.get(file_id) or {}
        return info.get("data"), info.get("url")

    def photo_bytes(self, file_id: str) -> bytes | None:
        """Bytes uploaded for a file_id the double issued (largest size only)."""
        info = self._files.get(file_id)
        return info["data"] if info else None

    def _editable(self, params: dict, action: str = "edit") -> SentMessage:
        if params.get("inline_message_id"):
            raise _bad(f"message to {action} not found")
        chat_id = self._require_chat(params, sending=False)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        record = self._records.get((chat_id, message_id))
        if record is None or record.deleted:
            if message_id in self._messages.get(chat_id, {}):
                raise _bad("message can't be edited")
            raise _bad(f"message to {action} not found")
        return record

    _NOT_MODIFIED = (
        "message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )

    def _apply_edit(
        self,
        record: SentMessage,
        method: str,
        *,
        text: str | None,
        raw: str | None,
        entities: list[dict],
        parse_mode: str | None,
        markup: dict | None,
    ) -> dict:
        message = dict(record.message)
        field_name = "text" if record.text is not None else "caption"
        ent_name = "entities" if field_name == "text" else "caption_entities"
        message.pop(ent_name, None)
        if text:
            message[field_name] = text
        else:
            message.pop(field_name, None)
        if entities:
            message[ent_name] = entities
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        if field_name == "text":
            record.text = text
        else:
            record.caption = text or ""
        record.raw = raw
        record.entities = entities
        record.parse_mode = parse_mode
        record.reply_markup = markup
        record.message = message
        self._messages.setdefault(record.chat_id, {})[record.message_id] = message
        record.edits.append(
            {
                "method": method,
                "time": time.monotonic(),
                field_name: text,
                "raw": raw,
                "parse_mode": parse_mode,
                "reply_markup": markup,
            }
        )
        self._changed(record)
        return message

    @staticmethod
    def _same_markup(a: dict | None, b: dict | None) -> bool:
        return (a or None) == (b or None)

    async def _m_editMessageText(self, params: dict) -> dict:
        record = self._editable(params)
        if record.text is None:
            raise _bad("there is no text in the message to edit")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain, entities = self._parse_text(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        if plain == record.text and entities == record.entities and self._same_markup(markup, record.reply_markup):
            raise _bad(self._NOT_MODIFIED)
        return self._apply_edit(
            record,
            "editMessageText",
            text=plain,
            raw=text,
            entities=entities,
            parse_mode=params.get("parse_mode"),
            markup=markup,
        )

    async def _m_editMessageCaption(self, params: dict) -> dict:
        record = self._editable(params)
        if record.text is not None:
            raise _bad("there is no caption in the message to edit")
        caption = params.get("caption") or ""
        plain, entities = self._parse_text(caption, params.get("parse_mode"), params.get("caption_entities"))
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        if (
            plain == (record.caption or "")
            and entities == record.entities
            and self._same_markup(markup, record.reply_markup)
        ):
            raise _bad(self._NOT_MODIFIED)
        return self._apply_edit(
            record,
            "editMessageCaption",
            text=plain,
            raw=caption,
            entities=entities,
            parse_mode=params.get("parse_mode"),
            markup=markup,
        )

    async def _m_editMessageReplyMarkup(self, params: dict) -> dict:
        record = self._editable(params)
        markup = self._validate_markup(params.get("reply_markup"))
        if self._same_markup(markup, record.reply_markup):
            raise _bad(self._NOT_MODIFIED)
        return self._apply_edit(
            record,
            "editMessageReplyMarkup",
            text=record.text if record.text is not None else record.caption,
            raw=record.raw,
            entities=record.entities,
            parse_mode=record.parse_mode,
            markup=markup,
        )

    async def _m_answerCallbackQuery(self, params: dict) -> bool:
        qid = params.get("callback_query_id")
        query = self._queries.get(str(qid)) if qid is not None else None
        if query is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        query.attempts += 1
        now = time.monotonic()
        latency = now - query.created
        if query.answer is not None or latency > self.answer_deadline:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query.answer = {
            "callback_query_id": query.id,
            "text": text,
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": params.get("cache_time", 0),
            "latency": latency,
            "time": now,
        }
        event = self._answer_event
        self._answer_event = asyncio.Event()
        event.set()
        return True

    async def _m_deleteMessage(self, params: dict) -> bool:
        chat_id = self._require_chat(params, sending=False)
        message_id = params.get("message_id")
        chat_messages = self._messages.get(chat_id, {})
        if not isinstance(message_id, int) or message_id not in chat_messages:
            raise _bad("message to delete not found")
        del chat_messages[message_id]
        record = self._records.get((chat_id, message_id))
        if record is not None:
            record.deleted = True
            self._changed(record)
        self.deleted.append((chat_id, message_id))
        return True

    async def _m_sendChatAction(self, params: dict) -> bool:
        chat_id = self._require_chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat_id, action, time.monotonic()))
        return True

    async def _m_getFile(self, params: dict) -> dict:
        fid = params.get("file_id")
        info = self._files.get(str(fid)) if fid else None
        if info is None:
            raise _bad("invalid file_id")
        return {
            "file_id": fid,
            "file_unique_id": info["unique"],
            "file_size": info["size"],
            "file_path": info["path"],
        }

    async def _m_close(self, params: dict) -> bool:
        return True

    async def _m_logOut(self, params: dict) -> bool:
        return True
