"""The Telegram Bot API double, exercised through a real PTB Bot/Application (no mocks)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import warnings

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
)

from tests.botenv import TOKEN
from tests.doubles.telegram import SentMessage, TelegramDouble
from tests.doubles.telegram_html import EntityParseError, parse_html

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# `tg` (the double for TOKEN) is the shared fixture in conftest.py.
BOT_ID = int(TOKEN.split(":")[0])  # Telegram: a token starts with the bot's user id


@pytest.fixture
async def bot(tg):
    async with Bot(tg.token, base_url=tg.base_url) as b:
        yield b


@pytest.fixture
async def alice(tg):
    user = tg.user(1001, first_name="Alice", language_code="en")
    await tg.send_text(user, "hi")  # she has started the bot
    return user


def png_bytes(width: int = 40, height: int = 30) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d[:10] or "x", callback_data=d) for d in data]])


async def raw_call(tg: TelegramDouble, method: str, token: str | None = None, **params):
    """Call the double with a plain HTTP client (JSON body); returns (status, body)."""
    url = f"{tg.base_url}{token or tg.token}/{method}"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=params) as resp:
            return resp.status, await resp.json()


# --------------------------------------------------------------------------- transport basics
async def test_get_me_via_ptb(bot, tg):
    me = await bot.get_me()
    assert me.id == BOT_ID
    assert me.is_bot and me.username == tg.bot_user["username"]
    assert tg.calls[-1].method == "getMe"


async def test_wrong_token_raises_invalid_token(tg):
    b = Bot("999:WRONG", base_url=tg.base_url)
    with pytest.raises(InvalidToken, match="rejected"):
        await b.initialize()
    status, body = await raw_call(tg, "getMe", token="999:WRONG")
    assert status == 401
    assert body == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_404(bot, tg):
    status, body = await raw_call(tg, "sendTelepathy", chat_id=1)
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 1})


async def test_method_names_case_insensitive_and_get_query(tg, alice):
    url = f"{tg.base_url}{tg.token}/SENDMESSAGE"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"chat_id": "1001", "text": "q"}) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["ok"] is True
    assert body["result"]["text"] == "q" and body["result"]["chat"]["id"] == 1001
    assert tg.calls[-1].method == "sendMessage"


# --------------------------------------------------------------------------- sendMessage
async def test_send_message_shape_and_ids(bot, tg, alice):
    m1 = await bot.send_message(1001, "one")
    m2 = await bot.send_message(1001, "two", reply_markup=keyboard("fb:BV1:1"))
    assert m2.message_id == m1.message_id + 1
    assert m1.from_user.id == BOT_ID and m1.chat.id == 1001 and m1.chat.type == "private"
    assert m2.reply_markup.inline_keyboard[0][0].callback_data == "fb:BV1:1"
    assert [r.text for r in tg.sent_to(1001)] == ["one", "two"]
    assert tg.sent[-1].callback_data == ["fb:BV1:1"]
    # the user's own "hi" occupies message_id 1 in the same chat
    assert [m["message_id"] for m in tg.messages(1001)] == [1, 2, 3]


async def test_html_is_parsed_into_entities(bot, tg, alice):
    m = await bot.send_message(
        1001,
        '<b>Title</b> &amp; <a href="https://b23.tv/x">link</a> &#x27;ok&#39;',
        parse_mode=ParseMode.HTML,
    )
    assert m.text == "Title & link 'ok'"
    kinds = {(e.type, e.offset, e.length) for e in m.entities}
    assert ("bold", 0, 5) in kinds and ("text_link", 8, 4) in kinds
    rec = tg.sent[-1]
    assert rec.text == "Title & link 'ok'" and rec.raw.startswith("<b>Title</b>")
    assert rec.parse_mode == "HTML"


@pytest.mark.parametrize(
    "text",
    [
        "1 < 2",
        "a > b",
        "Tom & Jerry",
        "&nbsp;",
        "<b>unclosed",
        "<b><i>bad</b></i>",
        "<div>x</div>",
        "<span>x</span>",
        "<br>",
        "</b>",
    ],
)
async def test_invalid_html_is_refused(bot, alice, text):
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(1001, text, parse_mode=ParseMode.HTML)


async def test_same_text_without_parse_mode_is_fine(bot, alice):
    m = await bot.send_message(1001, "1 < 2 & 3 > 2")
    assert m.text == "1 < 2 & 3 > 2"


async def test_text_limits_count_after_parsing(bot, alice):
    await bot.send_message(1001, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    await bot.send_message(1001, "&lt;" * 4096, parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(1001, "a" * 4097)
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(1001, "   ")
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(1001, "<b></b>", parse_mode=ParseMode.HTML)


async def test_caption_limit(bot, tg, alice):
    photo = png_bytes()
    await bot.send_photo(1001, photo, caption="<i>" + "c" * 1024 + "</i>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)message caption is too long"):
        await bot.send_photo(1001, photo, caption="c" * 1025)
    assert len(tg.sent) == 1


# --------------------------------------------------------------------------- sendPhoto
async def test_send_photo_bytes_arrive_intact(bot, tg, alice):
    data = png_bytes(64, 48)
    m = await bot.send_photo(1001, data, caption="cover", reply_markup=keyboard("fb:BV1:1"))
    rec = tg.sent[-1]
    assert rec.photo == data and rec.is_photo and rec.caption == "cover"
    largest = m.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (64, 48, len(data))
    assert largest.file_id == rec.photo_file_id and largest.file_unique_id
    assert tg.photo_bytes(largest.file_id) == data
    # re-send by file_id works and refers to the same bytes
    again = await bot.send_photo(1001, largest.file_id)
    assert again.photo[-1].file_id == largest.file_id
    assert tg.sent[-1].photo == largest.file_id
    assert tg.sent[-1].photo_sha256 == rec.photo_sha256 == hashlib.sha256(data).hexdigest()


async def test_keep_photo_bytes_false_keeps_only_digest():
    async with TelegramDouble(token=TOKEN, keep_photo_bytes=False) as tg:
        tg.known_chat(5)
        async with Bot(tg.token, base_url=tg.base_url) as b:
            data = png_bytes()
            m = await b.send_photo(5, data)
        rec = tg.sent[-1]
        assert rec.photo is None and rec.is_photo and rec.photo_size == len(data)
        assert rec.photo_sha256 == hashlib.sha256(data).hexdigest()
        assert tg.photo_bytes(m.photo[-1].file_id) is None


async def test_send_photo_large_image_gets_several_sizes(bot, alice):
    m = await bot.send_photo(1001, png_bytes(1000, 500))
    assert [p.width for p in m.photo] == [90, 320, 800, 1000]


async def test_send_photo_url_and_bad_file_id(bot, tg, alice):
    m = await bot.send_photo(1001, "https://i0.hdslb.com/bfs/archive/x.jpg")
    assert m.photo and tg.sent[-1].photo == "https://i0.hdslb.com/bfs/archive/x.jpg"
    with pytest.raises(BadRequest, match="(?i)wrong file identifier/HTTP URL specified"):
        await bot.send_photo(1001, "AgACAgNotAFileId")


async def test_strict_images_refuse_garbage():
    async with TelegramDouble(token=TOKEN, strict_images=True) as tg:
        tg.known_chat(5)
        async with Bot(tg.token, base_url=tg.base_url) as b:
            with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
                await b.send_photo(5, b"not an image")
            await b.send_photo(5, png_bytes())


# --------------------------------------------------------------------------- keyboards
async def test_callback_data_limit_is_bytes(bot, tg, alice):
    await bot.send_message(1001, "ok", reply_markup=keyboard("x" * 64))
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(1001, "too long", reply_markup=keyboard("x" * 65))
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):  # 22 CJK chars = 66 bytes
        await bot.send_message(1001, "cjk", reply_markup=keyboard("标" * 22))
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_photo(1001, png_bytes(), reply_markup=keyboard("y" * 65))
    assert len(tg.sent) == 1
    assert tg.errors[-1]["description"] == "Bad Request: BUTTON_DATA_INVALID"


async def test_text_only_inline_button_refused(tg, alice):
    status, body = await raw_call(
        tg,
        "sendMessage",
        chat_id=1001,
        text="x",
        reply_markup={"inline_keyboard": [[{"text": "nothing"}]]},
    )
    assert status == 400
    assert body["description"] == "Bad Request: Text buttons are not allowed in the inline keyboard"


# --------------------------------------------------------------------------- edits
async def test_edit_not_modified_and_not_found(bot, tg, alice):
    m = await bot.send_message(1001, "<b>hi</b>", parse_mode="HTML", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="(?i)not modified") as info:
        await bot.edit_message_text("<b>hi</b>", 1001, m.message_id, parse_mode="HTML", reply_markup=keyboard("a"))
    assert "exactly the same as a current content and reply markup" in str(info.value)
    assert tg.errors[-1]["description"] == (  # PTB lower-cases it after "Bad Request: "
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    )
    assert tg.errors[-1]["error_code"] == 400
    # same visible text but without bold is a change
    await bot.edit_message_text("hi", 1001, m.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", 1001, 9999)
    with pytest.raises(BadRequest, match="(?i)message can't be edited"):
        await bot.edit_message_text("x", 1001, 1)  # Alice's own message
    with pytest.raises(BadRequest, match="(?i)not modified"):
        await bot.edit_message_reply_markup(1001, m.message_id, reply_markup=keyboard("a"))
    edited = await bot.edit_message_reply_markup(1001, m.message_id, reply_markup=keyboard("b"))
    assert edited.reply_markup.inline_keyboard[0][0].callback_data == "b"
    removed = await bot.edit_message_reply_markup(1001, m.message_id)
    assert removed.reply_markup is None
    rec = tg.sent[-1]
    assert [e["method"] for e in rec.edits] == ["editMessageText", "editMessageReplyMarkup", "editMessageReplyMarkup"]
    assert rec.reply_markup is None and rec.text == "hi"


async def test_edit_text_without_markup_drops_keyboard(bot, tg, alice):
    m = await bot.send_message(1001, "v1", reply_markup=keyboard("a"))
    e = await bot.edit_message_text("v2", 1001, m.message_id)
    assert e.reply_markup is None and e.edit_date is not None
    assert tg.messages(1001)[-1]["text"] == "v2"


async def test_edit_caption(bot, tg, alice):
    m = await bot.send_photo(1001, png_bytes(), caption="1/5 标题", reply_markup=keyboard("fb:1"))
    with pytest.raises(BadRequest, match="(?i)there is no text in the message to edit"):
        await bot.edit_message_text("x", 1001, m.message_id)
    e = await bot.edit_message_caption(1001, m.message_id, caption="1/5 标题 ✅", reply_markup=keyboard("fb:1"))
    assert e.caption == "1/5 标题 ✅" and e.photo
    with pytest.raises(BadRequest, match="(?i)not modified"):
        await bot.edit_message_caption(1001, m.message_id, caption="1/5 标题 ✅", reply_markup=keyboard("fb:1"))
    with pytest.raises(BadRequest, match="(?i)message caption is too long"):
        await bot.edit_message_caption(1001, m.message_id, caption="c" * 1025)
    t = await bot.send_message(1001, "text")
    with pytest.raises(BadRequest, match="(?i)there is no caption in the message to edit"):
        await bot.edit_message_caption(1001, t.message_id, caption="x")


async def test_delete_message(bot, tg, alice):
    m = await bot.send_message(1001, "bye")
    assert await bot.delete_message(1001, m.message_id) is True
    assert tg.deleted == [(1001, m.message_id)] and tg.sent[-1].deleted
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(1001, m.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", 1001, m.message_id)


async def test_send_chat_action(bot, tg, alice):
    assert await bot.send_chat_action(1001, "upload_photo") is True
    assert tg.chat_actions[-1][:2] == (1001, "upload_photo")
    with pytest.raises(BadRequest, match="(?i)wrong parameter action"):
        await bot.send_chat_action(1001, "dancing")


# --------------------------------------------------------------------------- chats and blocks
async def test_never_started_user_is_forbidden(bot, tg):
    tg.user(2002, first_name="Bob")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(2002, "hello")
    tg.known_chat(2002)
    await bot.send_message(2002, "hello")
    tg.known_chat(3003, known=False)
    with pytest.raises(Forbidden, match="can't initiate"):
        await bot.send_message(3003, "hello")


async def test_strict_chats_unknown_chat_not_found():
    async with TelegramDouble(token=TOKEN, strict_chats=True) as tg:
        async with Bot(tg.token, base_url=tg.base_url) as b:
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await b.send_message(424242, "x")


async def test_lenient_unknown_chat_is_accepted(bot, tg):
    m = await bot.send_message(777, "x")
    assert m.chat.id == 777 and tg.sent[-1].chat_id == 777


async def test_block_forbids_and_unblock_restores(bot, tg, alice):
    upd = tg.block(1001)
    assert upd["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(1001, "digest")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_photo(1001, png_bytes())
    tg.unblock(1001)
    await bot.send_message(1001, "welcome back")
    statuses = [u["my_chat_member"]["new_chat_member"]["status"] for u in tg.pending_updates if "my_chat_member" in u]
    assert statuses == ["kicked", "member"]


async def test_group_chat(bot, tg):
    g = tg.group(-100123, "Friends")
    alice = tg.user(1001, "Alice")
    msg = await tg.send_text(alice, "/start@bilipick_bot", chat=g)
    assert msg["chat"]["type"] == "group" and msg["entities"][0]["length"] == 19
    m = await bot.send_message(-100123, "hello group")
    assert m.chat.title == "Friends"


# --------------------------------------------------------------------------- fault injection
async def test_injected_429_raises_retry_after(bot, tg, alice):
    tg.inject("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(1001, "x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert int(info.value.retry_after) == 7
    assert tg.errors[-1]["description"] == "Too Many Requests: retry after 7"
    await bot.send_message(1001, "x")  # times=1: the next call goes through


async def test_injected_faults_filter_by_chat_and_count(bot, tg, alice):
    tg.known_chat(2002)
    tg.inject("sendmessage", 403, "Forbidden: user is deactivated", chat_id=2002, times=2)
    await bot.send_message(1001, "fine")
    for _ in range(2):
        with pytest.raises(Forbidden, match="user is deactivated"):
            await bot.send_message(2002, "x")
    await bot.send_message(2002, "x")
    tg.inject(None, 500, times=None)
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.get_me()
    tg.clear_faults()
    await bot.get_me()


async def test_injected_502_is_network_error_not_bad_request(bot, tg, alice):
    tg.inject("sendPhoto", 502)
    with pytest.raises(NetworkError, match="Bad Gateway") as info:
        await bot.send_photo(1001, png_bytes())
    assert not isinstance(info.value, BadRequest)
    assert tg.sent == []


async def test_flood_limits_produce_429():
    async with TelegramDouble(token=TOKEN, flood_limits=(30, 1)) as tg:
        tg.known_chat(5)
        async with Bot(tg.token, base_url=tg.base_url) as b:
            await b.send_message(5, "first")
            with pytest.raises(RetryAfter):
                await b.send_message(5, "second within a second")
            assert tg.errors[-1]["description"] == "Too Many Requests: retry after 1"
            assert tg.max_rate_per_chat() == 1


# --------------------------------------------------------------------------- commands
async def test_set_my_commands_per_scope_and_language(bot, tg):
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "开始")], scope=BotCommandScopeAllPrivateChats(), language_code="zh")
    assert [c["command"] for c in tg.my_commands()] == ["start", "help"]
    assert tg.my_commands({"type": "all_private_chats"}, "zh") == [{"command": "start", "description": "开始"}]
    got = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="zh")
    assert [c.description for c in got] == ["开始"]
    assert await bot.get_my_commands(language_code="en") == ()
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Start", "caps")])
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("x" * 33, "too long")])
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_DESCRIPTION_INVALID"):
        await bot.set_my_commands([BotCommand("ok", "d" * 257)])


# --------------------------------------------------------------------------- getUpdates
async def test_get_updates_offset_limit_and_long_poll(tg):
    u = tg.user(1001, "Alice")
    for i in range(3):
        await tg.send_text(u, f"m{i}")
    status, body = await raw_call(tg, "getUpdates", limit=2)
    ids = [x["update_id"] for x in body["result"]]
    assert len(ids) == 2 and ids[1] == ids[0] + 1
    _, body = await raw_call(tg, "getUpdates", offset=ids[1] + 1)
    assert [x["message"]["text"] for x in body["result"]] == ["m2"]
    last = body["result"][0]["update_id"]
    # confirming everything; an empty long poll returns [] after the timeout
    _, body = await raw_call(tg, "getUpdates", offset=last + 1, timeout=0.2)
    assert body == {"ok": True, "result": []}
    # a long poll is woken by a new update
    poll = asyncio.create_task(raw_call(tg, "getUpdates", offset=last + 1, timeout=20))
    await asyncio.sleep(0.05)
    await tg.send_text(u, "/start")
    _, body = await asyncio.wait_for(poll, 10)
    msg = body["result"][0]["message"]
    assert msg["text"] == "/start"
    assert msg["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert msg["from"]["language_code"] == "en"


async def test_second_long_poll_terminates_the_first(tg):
    first = asyncio.create_task(raw_call(tg, "getUpdates", timeout=20))
    await asyncio.sleep(0.1)
    status, body = await raw_call(tg, "getUpdates", timeout=0)
    assert (status, body) == (200, {"ok": True, "result": []})
    status, body = await asyncio.wait_for(first, 10)
    assert status == 409 and "terminated by other getUpdates request" in body["description"]


async def test_writing_after_block_unblocks(tg):
    u = tg.user(1001, "Alice")
    tg.block(1001)
    await tg.send_text(u, "/start")
    kinds = [next(k for k in x if k != "update_id") for x in tg.pending_updates]
    assert kinds == ["my_chat_member", "my_chat_member", "message"]


async def test_get_updates_allowed_updates_and_webhook_conflict(tg):
    u = tg.user(1001, "Alice")
    await raw_call(tg, "getUpdates", allowed_updates=["callback_query"])
    await tg.send_text(u, "ignored")
    _, body = await raw_call(tg, "getUpdates")
    assert body["result"] == []
    await raw_call(tg, "getUpdates", allowed_updates=[])
    await tg.send_text(u, "kept")
    _, body = await raw_call(tg, "getUpdates")
    assert [x["message"]["text"] for x in body["result"]] == ["kept"]
    await raw_call(tg, "setWebhook", url="https://example.org/hook")
    status, body = await raw_call(tg, "getUpdates")
    assert status == 409 and "webhook is active" in body["description"]
    await raw_call(tg, "deleteWebhook", drop_pending_updates=True)
    _, body = await raw_call(tg, "getUpdates")
    assert body["result"] == []


# --------------------------------------------------------------------------- callback queries
async def test_answer_callback_query_once_and_deadline(bot, tg, alice):
    m = await bot.send_message(1001, "rate", reply_markup=keyboard("fb:BV1:1", "fb:BV1:-1"))
    rec = tg.sent[-1]
    qid = await tg.tap(alice, rec, "fb:BV1:1")
    upd = tg.pending_updates[-1]["callback_query"]
    assert upd["id"] == qid and upd["data"] == "fb:BV1:1"
    assert upd["message"]["message_id"] == m.message_id and upd["chat_instance"]
    assert await bot.answer_callback_query(qid, text="已记录 👍") is True
    ans = tg.answer_for(qid)
    assert ans["text"] == "已记录 👍" and 0 <= ans["latency"] < 10
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query(qid)
    with pytest.raises(BadRequest, match="(?i)query ID is invalid"):
        await bot.answer_callback_query("123")
    tg.answer_deadline = 0.05
    late = await tg.tap(alice, rec, "fb:BV1:-1")
    await asyncio.sleep(0.1)
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query(late)
    assert tg.answer_for(late) is None
    with pytest.raises(AssertionError, match="not on message"):
        await tg.tap(alice, rec, "fb:BV9:1")


# --------------------------------------------------------------------------- observation helpers
async def test_wait_for_timeout_lists_what_chat_received(bot, tg, alice):
    await bot.send_message(1001, "something else")
    with pytest.raises(AssertionError) as info:
        await tg.wait_for(lambda m: "digest" in m.content, timeout=0.2, chat=alice)
    assert "something else" in str(info.value) and "chat 1001" in str(info.value)


async def test_wait_for_sees_edits_and_since(bot, tg, alice):
    m = await bot.send_message(1001, "v1")
    since = tg.mark()

    async def later():
        await asyncio.sleep(0.05)
        await bot.edit_message_text("v2", 1001, m.message_id)

    task = asyncio.create_task(later())
    got = await tg.wait_for(lambda r: r.text == "v2", timeout=5, chat=1001, since=since)
    await task
    assert isinstance(got, SentMessage) and got.message_id == m.message_id
    with pytest.raises(AssertionError):
        await tg.wait_for(lambda r: r.text == "v1", timeout=0.1, since=tg.mark())


async def test_rate_helpers(bot, tg):
    for chat in (1, 2, 3):
        tg.known_chat(chat)
    await asyncio.gather(*(bot.send_message(c, f"m{i}") for c in (1, 2, 3) for i in range(4)))
    assert tg.max_rate_global() == 12
    assert tg.max_rate_per_chat() == 4
    assert tg.max_rate_per_chat(window=1e-9) == 1
    assert len(tg.send_log) == 12


async def test_many_concurrent_sends_are_all_recorded(bot, tg):
    users = [tg.user(10_000 + i, f"U{i}") for i in range(100)]
    for u in users:
        tg.known_chat(u["id"])
    await asyncio.gather(*(bot.send_message(u["id"], f"pick {k}") for k in range(3) for u in users))
    assert len(tg.sent) == 300
    assert all(len(tg.sent_to(u)) == 3 for u in users[:10])
    assert {r.message_id for r in tg.sent_to(users[0])} == {1, 2, 3}


# --------------------------------------------------------------------------- full Application
async def test_application_long_polling_end_to_end(tg):
    seen_members: list[str] = []
    taps: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        lang = update.effective_user.language_code
        await update.message.reply_text(
            f"<b>Welcome</b> ({lang})",
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard("fb:BV1xx411c7mD:1"),
        )

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        await q.answer("已记录 👍")
        taps.append(q.data)
        await q.edit_message_reply_markup(reply_markup=keyboard("fb:BV1xx411c7mD:0"))

    async def member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen_members.append(update.my_chat_member.new_chat_member.status)

    app = ApplicationBuilder().token(tg.token).base_url(tg.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_tap, pattern=r"^fb:"))
    app.add_handler(ChatMemberHandler(member, ChatMemberHandler.MY_CHAT_MEMBER))
    alice = tg.user(1001, "Alice", language_code="zh-hans")
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            await tg.send_text(alice, "/start")
            welcome = await tg.wait_for(lambda m: "Welcome" in m.content, chat=alice)
            assert welcome.text == "Welcome (zh-hans)"
            assert welcome.entities == [{"type": "bold", "offset": 0, "length": 7}]

            qid = await tg.tap(alice, welcome, "fb:BV1xx411c7mD:1")
            answer = await tg.wait_answer(qid, timeout=10)
            assert answer["text"] == "已记录 👍"
            edited = await tg.wait_for(lambda m: m.callback_data == ["fb:BV1xx411c7mD:0"], chat=alice)
            assert edited.message_id == welcome.message_id
            assert taps == ["fb:BV1xx411c7mD:1"]

            tg.block(1001)
            for _ in range(100):
                if seen_members:
                    break
                await asyncio.sleep(0.05)
            assert seen_members == ["kicked"]
        finally:
            await app.updater.stop()
            await app.stop()
    # the Updater confirmed what it processed
    assert tg.pending_updates == []
    methods = {c.method for c in tg.calls}
    assert {
        "getMe",
        "deleteWebhook",
        "getUpdates",
        "sendMessage",
        "answerCallbackQuery",
        "editMessageReplyMarkup",
    } <= methods


# --------------------------------------------------------------------------- HTML parser unit
@pytest.mark.parametrize(
    ("html", "plain", "entities"),
    [
        ("plain", "plain", []),
        ("<b>b</b><i>i</i>", "bi", [("bold", 0, 1), ("italic", 1, 1)]),
        ('<tg-spoiler>s</tg-spoiler><span class="tg-spoiler">t</span>', "st", [("spoiler", 0, 1), ("spoiler", 1, 1)]),
        ("😀<u>x</u>", "😀x", [("underline", 2, 1)]),  # UTF-16 offsets
        ('<pre><code class="language-python">x=1</code></pre>', "x=1", [("pre", 0, 3)]),
        ("<blockquote expandable>q</blockquote>", "q", [("expandable_blockquote", 0, 1)]),
        ("&lt;&gt;&amp;&quot;&#65;&#x42;", '<>&"AB', []),
        ("<A HREF='https://x.y/?a=1&amp;b=2'>l</A>", "l", [("text_link", 0, 1)]),
    ],
)
def test_parse_html_valid(html, plain, entities):
    got_plain, got_entities = parse_html(html)
    assert got_plain == plain
    assert [(e["type"], e["offset"], e["length"]) for e in got_entities] == entities


def test_parse_html_link_url_and_language():
    _, ents = parse_html('<a href="https://x.y/?a=1&amp;b=2">l</a>')
    assert ents[0]["url"] == "https://x.y/?a=1&b=2"
    _, ents = parse_html('<pre><code class="language-go">x</code></pre>')
    assert ents[0]["language"] == "go"


def test_parse_html_error_offsets_are_bytes():
    with pytest.raises(EntityParseError, match="byte offset 4"):
        parse_html("标 < x")


def test_json_body_requests_are_typed():
    # params arriving as JSON keep their types; form params are decoded per parameter
    from tests.doubles.telegram import _normalize_params

    assert _normalize_params(
        {"chat_id": "5", "text": "123", "show_alert": "true", "reply_markup": json.dumps({"inline_keyboard": []})}
    ) == {"chat_id": 5, "text": "123", "show_alert": True, "reply_markup": {"inline_keyboard": []}}
    assert _normalize_params({"chat_id": "@channel"})["chat_id"] == "@channel"


async def test_reset_after_accept_delivers_but_the_client_sees_a_network_error(bot, tg, alice):
    tg.inject_reset("sendPhoto")
    with pytest.raises(NetworkError) as info:
        await bot.send_photo(1001, png_bytes(), caption="once")
    assert not isinstance(info.value, (BadRequest, TimedOut))
    assert [m.caption for m in tg.sent_to(1001)] == ["once"], "Telegram carried it out"
    assert [c.method for c in tg.lost_answers] == ["sendPhoto"]
    await bot.send_message(1001, "next")  # times=1: the next call is answered normally
    assert tg.sent_to(1001)[-1].text == "next"


async def test_delayed_answer_times_out_after_delivery(tg, alice):
    async with Bot(tg.token, base_url=tg.base_url) as b:
        tg.inject_delay("sendMessage", 1.0)
        with pytest.raises(TimedOut):
            await b.send_message(1001, "late", read_timeout=0.2)
    assert [m.text for m in tg.sent_to(1001)] == ["late"]
