"""Model blobs (safetensors bytes) with versions in the database: the BlobBackend of distributed mode."""

from __future__ import annotations

import time

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import ModelBlob

model_blobs = ModelBlob.__table__


class DatabaseBlobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self, key: str) -> tuple[int, int] | None:
        stmt = (
            select(model_blobs.c.version, model_blobs.c.created_at)
            .where(model_blobs.c.key == key)
            .order_by(model_blobs.c.version.desc())
            .limit(1)
        )
        with self.db.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return (int(row[0]), int(row[1])) if row else None

    def read(self, key: str, version: int) -> bytes | None:
        stmt = select(model_blobs.c.data).where(model_blobs.c.key == key, model_blobs.c.version == version)
        with self.db.engine.connect() as conn:
            data = conn.execute(stmt).scalar()
        return bytes(data) if data is not None else None

    def write(self, key: str, data: bytes, keep: int) -> int:
        """Store the next version and prune all but the newest `keep`. Two writers of one key (never
        for a user's model: per-user locks) both succeed, one after the other."""
        for _ in range(5):
            try:
                with self.db.engine.begin() as conn:
                    newest = conn.execute(
                        select(func.max(model_blobs.c.version)).where(model_blobs.c.key == key)
                    ).scalar()
                    version = (newest or 0) + 1
                    conn.execute(
                        insert(model_blobs).values(key=key, version=version, data=data, created_at=time.time_ns())
                    )
                    conn.execute(
                        delete(model_blobs).where(model_blobs.c.key == key, model_blobs.c.version <= version - keep)
                    )
                return version
            except IntegrityError:
                continue  # another writer took that version: take the next
        raise RuntimeError(f"could not store a new version of {key!r}")

    def keys(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return [str(k) for k in conn.execute(select(model_blobs.c.key).distinct()).scalars()]

    def delete(self, key: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(delete(model_blobs).where(model_blobs.c.key == key))
