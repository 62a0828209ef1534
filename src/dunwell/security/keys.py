"""The server's secret key and the purpose-bound keys derived from it.

One secret (``DUNWELL_SECRET_KEY``) is configured; each use (encrypting
provider credentials, signing billing links) derives its own key from it
with HMAC, so a key leaked from one purpose cannot forge another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from dunwell.settings import Settings

#: The shortest key accepted: a short or empty key lets anyone who guesses it
#: forge billing links and read provider secrets. Dunwell's own are 64.
MIN_KEY_LENGTH = 32

log = logging.getLogger("dunwell.security")


class MissingSecretKey(RuntimeError):
    """No usable secret key: none is configured and none can be kept beside the database,
    or the one found is too short."""


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def resolve_secret_key(settings: Settings) -> str:
    """The configured key, or for a SQLite file a key kept beside it.

    A key file makes ``make run`` work with nothing configured; several
    machines sharing PostgreSQL must share one key, so there it is required.
    """
    if settings.secret_key:
        return _configured(settings.secret_key)
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise MissingSecretKey(
            "set DUNWELL_SECRET_KEY (any long random string, the same on every machine)"
        )
    path = Path(url.database + ".key")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return _checked(path.read_text().strip(), f"the key file {path}")


def _configured(key: str) -> str:
    """``DUNWELL_SECRET_KEY`` (or ``--secret-key``); blank is refused, short is warned of.

    A short configured key is only warned of for now: existing installations
    and test set-ups use them, and refusing one would stop them on upgrade.
    """
    if not key.strip():
        raise MissingSecretKey("DUNWELL_SECRET_KEY is blank; set a long random string")
    if len(key) < MIN_KEY_LENGTH:
        log.warning(
            "DUNWELL_SECRET_KEY has %d characters; use at least %d (a random string)",
            len(key),
            MIN_KEY_LENGTH,
        )
    return key


def _checked(key: str, source: str) -> str:
    if len(key) < MIN_KEY_LENGTH:
        raise MissingSecretKey(
            f"{source} holds a key of {len(key)} characters; at least {MIN_KEY_LENGTH} are"
            " needed. Restore it from a backup, or delete it to have a new one made"
            " (stored provider secrets and billing links already sent then stop working)"
        )
    return key
