"""One Telegram send pace for every process of the bot, held in the database.

Telegram allows ~30 messages/s per bot, whichever machine sends them. Each send reserves the next
free slot in the single `telegram_pace` row (one UPDATE ... RETURNING, serialised by the row lock)
and waits until that slot, measured on the database's clock so machines' clocks don't matter.
A 429 that is the bot's global limit pushes the slot past its retry_after for everyone.

Telegram also allows about one message per second in one chat, whichever machine sends it (a digest
from a worker, a /recommend reply from the front): each new message reserves its chat's next slot in
`telegram_chat_pace` the same way, and a 429 for one chat pushes only that chat's slot.
"""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database

_NOW = "extract(epoch from clock_timestamp())"
# A chat's row is useless once its slot is this far in the past; every PRUNE_EVERY reservations of a
# process drop those rows, so the table holds only chats written to recently.
STALE_AFTER_S = 600.0
PRUNE_EVERY = 1000


class DatabasePace:
    def __init__(self, db: Database) -> None:
        if db.dialect != "postgresql":
            raise ValueError("the shared Telegram pace needs PostgreSQL (distributed mode)")
        self.db = db
        self._chat_reservations = 0

    def reserve(self, interval_s: float) -> float:
        """Take the next slot; seconds to wait before sending in it (0 when it is free now)."""
        with self.db.engine.begin() as conn:
            row = conn.execute(
                text(
                    f"UPDATE telegram_pace SET next_slot = GREATEST(next_slot, {_NOW}) + :interval "
                    f"WHERE id = 1 RETURNING next_slot - :interval - {_NOW}"
                ),
                {"interval": interval_s},
            ).one()
        return max(0.0, float(row[0]))

    def pause_all(self, seconds: float) -> None:
        """Telegram said retry_after for the whole bot: nobody sends before it has passed."""
        with self.db.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE telegram_pace SET next_slot = GREATEST(next_slot, {_NOW} + :pause) WHERE id = 1"),
                {"pause": seconds},
            )

    def reserve_chat(self, chat_id: int, interval_s: float) -> float:
        """Take the chat's next message slot; seconds to wait before sending in it."""
        self._chat_reservations += 1
        with self.db.engine.begin() as conn:
            if self._chat_reservations % PRUNE_EVERY == 0:
                conn.execute(text(f"DELETE FROM telegram_chat_pace WHERE next_slot < {_NOW} - :stale"),
                             {"stale": STALE_AFTER_S})  # fmt: skip
            row = conn.execute(
                text(
                    f"INSERT INTO telegram_chat_pace (chat_id, next_slot) VALUES (:chat, {_NOW} + :interval) "
                    "ON CONFLICT (chat_id) DO UPDATE "
                    f"SET next_slot = GREATEST(telegram_chat_pace.next_slot, {_NOW}) + :interval "
                    f"RETURNING next_slot - :interval - {_NOW}"
                ),
                {"chat": chat_id, "interval": interval_s},
            ).one()
        return max(0.0, float(row[0]))

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Telegram said retry_after for one chat: no process sends to it before it has passed."""
        with self.db.engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO telegram_chat_pace (chat_id, next_slot) VALUES (:chat, {_NOW} + :pause) "
                    "ON CONFLICT (chat_id) DO UPDATE "
                    f"SET next_slot = GREATEST(telegram_chat_pace.next_slot, {_NOW} + :pause)"
                ),
                {"chat": chat_id, "pause": seconds},
            )
