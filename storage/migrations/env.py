"""Alembic environment: runs against the engine the application hands over (see Database.migrate)."""

from alembic import context
from sqlmodel import SQLModel

from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # Database.migrate: its transaction, under its lock
        _run(connection)
        return
    engine = config.attributes.get("engine")
    if engine is None:  # the alembic command line (alembic.ini): the bot's own database
        from sqlmodel import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or _bot_database_url())
    with engine.begin() as connection:
        _run(connection)


def _bot_database_url() -> str:
    from settings import StorageSettings

    return StorageSettings().resolved_database_url


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
    )
    with context.begin_transaction():  # joins the caller's transaction
        context.run_migrations()


run_migrations_online()
