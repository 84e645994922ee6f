"""Secrets never reach a log line: the bot token (and anything shaped like one) and any other secret
given are replaced when a record is created, for every logger and handler. Used by every process."""

from __future__ import annotations

import logging
import re


class Redactor:
    """Replaces the given secrets (and anything shaped like a bot token) in a log record."""

    TOKEN_SHAPE = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{20,}")

    def __init__(self, *secrets: str) -> None:
        self._secrets = [s for s in secrets if s]

    def clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return self.TOKEN_SHAPE.sub("<redacted>", text)

    def apply(self, record: logging.LogRecord) -> None:
        message, formatted = _message_of(record)
        cleaned = self.clean(message)
        if cleaned != message or not formatted:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are rendered later from exc_info: render them now, redacted.
            try:
                record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
            except Exception:  # noqa: BLE001 - an exception that cannot be rendered: name it only
                record.exc_text = f"{type(record.exc_info[1]).__name__} (traceback could not be rendered)"
            record.exc_info = None


def _message_of(record: logging.LogRecord) -> tuple[str, bool]:
    """The record's message, and whether msg % args worked. A bad call such as
    log.info("%s %s", one) must still log (msg and args as they are), never raise at the caller."""
    try:
        return record.getMessage(), True
    except Exception:  # noqa: BLE001 - whatever the arguments, logging must not fail
        try:
            return f"{record.msg} (bad log arguments: {record.args!r})", False
        except Exception:  # noqa: BLE001
            return "<a log message that could not be rendered>", False


def install_redaction(*secrets: str) -> None:
    """Redact at record creation, so every logger and every handler (httpx, telegram, ours) is covered."""
    redactor = Redactor(*secrets)
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            redactor.apply(record)
        except Exception:  # noqa: BLE001 - never raise at the caller; never let an unredacted text out
            record.msg, record.args = "<a log message that could not be redacted>", None
            record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(redacted_record)
