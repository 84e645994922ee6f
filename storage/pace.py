"""One Telegram send pace for every process of the bot, held in the database.

Telegram allows ~30 messages/s per bot, whichever machine sends them. Each send reserves the next
free slot in the single `telegram_pace` row (one UPDATE ... RETURNING, serialised by the row lock)
and waits until that slot, measured on the database's clock so machines' clocks don't matter.
A 429 pushes the slot past its retry_after for everyone.
"""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database

_NOW = "extract(epoch from clock_timestamp())"


class DatabasePace:
    def __init__(self, db: Database) -> None:
        if db.dialect != "postgresql":
            raise ValueError("the shared Telegram pace needs PostgreSQL (distributed mode)")
        self.db = db

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
        """Telegram said retry_after: nobody sends before it has passed."""
        with self.db.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE telegram_pace SET next_slot = GREATEST(next_slot, {_NOW} + :pause) WHERE id = 1"),
                {"pause": seconds},
            )
