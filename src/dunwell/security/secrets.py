"""Encrypting provider secrets (SMTP passwords, Twilio auth tokens) at rest.

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``; the key is
derived from the server's secret key, so a database copy alone does not
reveal a merchant's credentials.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

from dunwell.security.keys import derive_key


class SecretUnreadable(RuntimeError):
    """A stored secret cannot be decrypted: the secret key has changed."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        raw = derive_key(secret_key, "dunwell/provider-secrets/v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored provider secret cannot be decrypted; was DUNWELL_SECRET_KEY changed?"
            ) from None
