"""Credentials are encrypted with MultiFernet before they touch the database.

FERNET_KEYS holds comma-separated keys, newest first (MultiFernet rotation). Without it a key is
generated once into DATA_DIR/secret.key (mode 0600) and a warning says so.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"


class KeysDoNotFit(RuntimeError):
    """Stored credentials that no configured key opens: starting would mark every login dead."""


class CredentialVault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        fernets = [Fernet(k.strip().encode()) for k in keys]
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_config(cls, fernet_keys: str | None, data_dir: Path) -> CredentialVault:
        if fernet_keys:
            return cls([k for k in fernet_keys.split(",") if k.strip()])
        return cls([load_or_create_key(data_dir)])

    def encrypt(self, secrets: dict[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, str] | None:
        """The stored secrets, or None when no configured key opens them (key lost or rotated out)."""
        try:
            return json.loads(self._fernet.decrypt(token))
        except (InvalidToken, ValueError):
            log.error("stored credentials cannot be decrypted with the configured FERNET_KEYS")
            return None

    def rotate(self, token: bytes) -> bytes | None:
        """The token under the newest key (unchanged when it already is); None when no key opens it."""
        try:
            self._newest.decrypt(token)
            return token
        except InvalidToken:
            pass
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            return None


def load_or_create_key(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # Create with 0600 from the start: the key never exists world-readable, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    log.warning(
        "FERNET_KEYS is not set: generated a key at %s. Back it up or set FERNET_KEYS; "
        "without it the stored bilibili logins cannot be read.",
        path,
    )
    return key
