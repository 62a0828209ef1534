"""Errors a service raises when a request cannot be carried out.

ServiceError             base; ``str()`` is a message for a person
├── NotFound             the thing does not exist in this site
├── InvalidInput         a field is wrong; ``field`` names it
├── Conflict             the thing exists but is in the wrong state
└── Busy                 the answer cannot be given consistently now; retry soon
"""

from __future__ import annotations


class ServiceError(Exception):
    pass


class NotFound(ServiceError):
    pass


class InvalidInput(ServiceError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(ServiceError):
    pass


class Busy(ServiceError):
    """Transient: other work holds what the answer depends on. Ask again shortly."""

    retry_after_seconds = 1
