"""Start-up safety, before the bot answers anyone."""

from __future__ import annotations

import logging

from services import Services
from settings import Settings
from storage import users
from storage.crypto import KeysDoNotFit

log = logging.getLogger(__name__)


def require_shared_keys(settings: Settings) -> None:
    """Distributed mode: every process must hold the same FERNET_KEYS. Without them each process (each
    container, with its own DATA_DIR) would generate its own secret.key, and the first sync on a worker
    would find every login unreadable and tell each user it is dead."""
    keys = settings.storage.fernet_keys
    if settings.work.distributed and (keys is None or not keys.get_secret_value().strip()):
        raise SystemExit(
            "FERNET_KEYS is not set: WORK_MODE=distributed needs the same FERNET_KEYS on the front and every "
            'worker (generate one: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )


def check_stored_logins(services: Services) -> None:
    """prepare_storage, with stored logins that open under none of the keys as a clean SystemExit."""
    try:
        prepare_storage(services)
    except KeysDoNotFit as exc:
        raise SystemExit(str(exc)) from None


def prepare_storage(services: Services) -> None:
    """Stored logins re-encrypted under the newest key (raises storage.crypto.KeysDoNotFit when some
    open under none), and no model files left for users who are gone."""
    rotated = users.reencrypt_credentials(services.db, services.vault)
    if rotated:
        log.info("re-encrypted %d stored logins under the newest FERNET_KEYS key", rotated)
    removed = remove_orphan_models(services)
    if removed:
        log.info("removed the model files of %d users who are gone", removed)


def remove_orphan_models(services: Services) -> int:
    """Model directories of user ids no longer in storage (saved after a /forget by an older version,
    or left by a crash): a later user must never find one under their id."""
    on_disk = {int(key) for key in services.models.user_keys() if key.isdigit()}
    gone = on_disk - users.existing_ids(services.db, sorted(on_disk)) if on_disk else set()
    for user_id in gone:
        services.models.delete(str(user_id))
    return len(gone)
