"""Paces shared by every process of the bot, held in the database: Telegram's sends (per bot) and
bilibili's requests and risk pause (per egress IP).

Telegram allows ~30 messages/s per bot, whichever machine sends them. Each send reserves the next
free slot in the single `telegram_pace` row (one UPDATE ... RETURNING, serialised by the row lock)
and waits until that slot, measured on the database's clock so machines' clocks don't matter.
A 429 that is the bot's global limit pushes the slot past its retry_after for everyone.

Telegram also allows about one message per second in one chat, whichever machine sends it (a digest
from a worker, a /recommend reply from the front): each new message reserves its chat's next slot in
`telegram_chat_pace` the same way, and a 429 for one chat pushes only that chat's slot.

bilibili limits per egress IP, whatever process asks: `BilibiliEgressPace` is one `bilibili_pace` row
per egress name (BILIBILI_EGRESS), the same slot reservation plus the risk pause, for
`bilibili.transport.Throttle(shared=...)`.
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
                conn.execute(
                    text(f"DELETE FROM telegram_chat_pace WHERE next_slot < {_NOW} - :stale"), {"stale": STALE_AFTER_S}
                )
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


# The database's clock once per statement (clock_timestamp() moves between two calls in one statement).
_CLOCK = "WITH clock AS (SELECT extract(epoch from clock_timestamp())::float8 AS now) "


class BilibiliEgressPace:
    """bilibili's pace and risk pause for every process leaving by one egress IP (one row, by name).

    Implements bilibili.transport.SharedPace; each call is one statement, serialised by the row lock.
    """

    def __init__(self, db: Database, egress: str) -> None:
        if db.dialect != "postgresql":
            raise ValueError("the shared bilibili pace needs PostgreSQL (distributed mode)")
        self.db, self.egress = db, egress
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO bilibili_pace (egress, next_slot, paused_until, strikes) "
                    "VALUES (:egress, 0, 0, 0) ON CONFLICT (egress) DO NOTHING"
                ),
                {"egress": egress},
            )

    def reserve(self, interval_s: float) -> tuple[float, float, int]:
        """Take the next slot unless a risk pause runs: (seconds to the slot, pause left, strikes)."""
        with self.db.engine.begin() as conn:
            row = conn.execute(
                text(
                    _CLOCK + "UPDATE bilibili_pace SET next_slot = CASE WHEN paused_until > clock.now "
                    "THEN next_slot ELSE GREATEST(next_slot, clock.now) + :interval END "
                    "FROM clock WHERE egress = :egress RETURNING "
                    "CASE WHEN paused_until > clock.now THEN 0 ELSE next_slot - :interval - clock.now END, "
                    "GREATEST(paused_until - clock.now, 0), strikes"
                ),
                {"interval": interval_s, "egress": self.egress},
            ).one()
        return max(0.0, float(row[0])), float(row[1]), int(row[2])

    def pause(self, base_s: float, max_s: float) -> tuple[float, float, int]:
        """Start the pause (base doubling per strike, at most max) unless one runs: (0, pause left, strikes)."""
        with self.db.engine.begin() as conn:
            row = conn.execute(
                text(
                    _CLOCK + "UPDATE bilibili_pace SET "
                    "strikes = CASE WHEN paused_until > clock.now THEN strikes ELSE strikes + 1 END, "
                    "paused_until = CASE WHEN paused_until > clock.now THEN paused_until "
                    "ELSE clock.now + LEAST(:base * power(2, LEAST(strikes, 30)), :max) END "
                    "FROM clock WHERE egress = :egress RETURNING GREATEST(paused_until - clock.now, 0), strikes"
                ),
                {"base": base_s, "max": max_s, "egress": self.egress},
            ).one()
        return 0.0, float(row[0]), int(row[1])

    def clear_strikes(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text("UPDATE bilibili_pace SET strikes = 0 WHERE egress = :egress AND strikes > 0"),
                {"egress": self.egress},
            )

    def pause_left_s(self) -> float:
        with self.db.engine.begin() as conn:
            row = conn.execute(
                text(
                    _CLOCK + "SELECT GREATEST(paused_until - clock.now, 0) FROM bilibili_pace, clock "
                    "WHERE egress = :egress"
                ),
                {"egress": self.egress},
            ).first()
        return float(row[0]) if row else 0.0
