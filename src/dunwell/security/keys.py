"""The server's secret key and the purpose-bound keys derived from it.

One secret (``DUNWELL_SECRET_KEY``) is configured; each use (encrypting
provider credentials, signing billing links) derives its own key from it
with HMAC, so a key leaked from one purpose cannot forge another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from dunwell.settings import Settings


class MissingSecretKey(RuntimeError):
    """No secret key is configured and none can be kept beside the database."""


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def resolve_secret_key(settings: Settings) -> str:
    """The configured key, or for a SQLite file a key kept beside it.

    A key file makes ``make run`` work with nothing configured; several
    machines sharing PostgreSQL must share one key, so there it is required.
    """
    if settings.secret_key:
        return settings.secret_key
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
    return path.read_text().strip()
