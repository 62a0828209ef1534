"""Tickets in a Gorgias-compatible help desk, over its REST API.

``create_ticket`` is one ``POST {base_url}/tickets`` with HTTP Basic auth
(the help desk user's email or username, and an API key) and a JSON body::

    {"customer": {"email": ..., "name": ...},
     "messages": [{"channel": "api", "via": "api", "from_agent": false,
                   "sender": {"email": ...}, "subject": ...,
                   "body_text": ..., "body_html": ...}],
     "subject": ..., "channel": "api", "via": "api", "from_agent": false,
     "external_id": ..., "tags": [{"name": "dunwell"}, ...]}

The help desk answers 201 with the ticket, whose ``id`` is all we keep.
``base_url`` is the API root, such as ``https://shop.gorgias.com/api``.

``find_ticket`` is ``GET {base_url}/tickets?external_id=...&limit=1``, which
answers 200 with ``{"object": "list", "data": [ticket, ...], ...}``: before
trying a ticket again, the caller asks whether an earlier try made it after
all (an answer lost to a timeout, or a worker that died before recording
it), so a customer never gets two tickets.

Errors
======

Every failure is a :class:`~dunwell.channels.base.TransportError`:

* transient (``permanent=False``): no answer in time, a refused or reset
  connection, HTTP 408, 425, 429 and 5xx. Trying again later may work.
* permanent: 400 and 422 (the ticket was refused as it is), 401 and 403
  (wrong username or key), 404 (wrong URL), any other 4xx, a redirect
  (never followed: the key would go wherever it points) and a 2xx answer
  with no ticket id. Only the merchant can fix these.

``code`` is ``"http-<status>"``, ``"helpdesk-timeout"``,
``"helpdesk-unreachable"`` or ``"helpdesk-bad-answer"``.

The API key is sent only in the Authorization header. It is kept out of
``repr`` and out of every error message, so no log line can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from dunwell import __version__
from dunwell.channels.base import TransportError
from dunwell.security.tls import client_tls

TIMEOUT = 10.0
USER_AGENT = f"Dunwell-Concierge/{__version__}"
#: Answers that may succeed if sent again later.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: How much of an error answer goes into the error message.
EXCERPT_CHARS = 200


@dataclass(frozen=True, kw_only=True)
class HelpdeskConfig:
    """One site's help desk account; ``transport`` lets tests route requests."""

    base_url: str
    username: str
    api_key: str = field(repr=False)
    timeout: float = TIMEOUT
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.base_url or not self.username or not self.api_key:
            raise ValueError("the help desk needs its URL, a username and an API key")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True, kw_only=True)
class NewTicket:
    """A ticket opened on the customer's behalf, with its first message."""

    customer_email: str
    customer_name: str | None
    subject: str
    body_text: str
    body_html: str | None = None
    tags: tuple[str, ...] = ()
    #: Our reference for the ticket, so a person can match it to Dunwell.
    external_id: str | None = None


def is_permanent_status(status: int) -> bool:
    """Whether an HTTP error status means that sending again cannot help."""
    return not (status in TRANSIENT_STATUSES or status >= 500)


def ticket_payload(ticket: NewTicket) -> dict[str, Any]:
    """The JSON body of ``POST /tickets``."""
    # The customer wrote first (by text), so the message is theirs
    # (from_agent false, sender the customer); "api" is the channel the
    # help desk offers for tickets that come from another application.
    message: dict[str, Any] = {
        "channel": "api",
        "via": "api",
        "from_agent": False,
        "sender": {"email": ticket.customer_email},
        "subject": ticket.subject,
        "body_text": ticket.body_text,
    }
    if ticket.body_html:
        message["body_html"] = ticket.body_html
    customer: dict[str, Any] = {"email": ticket.customer_email}
    if ticket.customer_name:
        customer["name"] = ticket.customer_name
    payload: dict[str, Any] = {
        "customer": customer,
        "messages": [message],
        "subject": ticket.subject,
        "channel": "api",
        "via": "api",
        "from_agent": False,
        "tags": [{"name": tag} for tag in ticket.tags],
    }
    if ticket.external_id:
        payload["external_id"] = ticket.external_id
    return payload


class HelpdeskClient:
    """Creates tickets in one help desk account."""

    def __init__(self, config: HelpdeskConfig) -> None:
        self.config = config

    def create_ticket(self, ticket: NewTicket, *, address: str | None = None) -> str:
        """Open the ticket and return its id; raises :class:`TransportError`.

        ``address`` is an IP address the URL's host was checked to resolve
        to: the request goes there rather than to a second DNS answer that
        could differ, with the name kept for Host and TLS.
        """
        response = self._call("POST", address, json=ticket_payload(ticket))
        return _ticket_id(response)

    def find_ticket(self, external_id: str, *, address: str | None = None) -> str | None:
        """The id of a ticket already opened with ``external_id``, or None.

        Raises :class:`TransportError` like :meth:`create_ticket`.
        """
        response = self._call("GET", address, params={"external_id": external_id, "limit": 1})
        return _found_ticket_id(response)

    def _call(self, method: str, address: str | None, **content: Any) -> httpx.Response:
        """One request to ``{base_url}/tickets``; a failure to get an answer is raised."""
        try:
            return self._send(method, address, content)
        except httpx.TimeoutException:
            raise TransportError(
                f"the help desk did not answer within {self.config.timeout:g} s",
                permanent=False,
                code="helpdesk-timeout",
            ) from None
        except httpx.HTTPError as error:
            # The message names the failure, never the request (its headers
            # hold the key).
            raise TransportError(
                f"the help desk cannot be reached: {type(error).__name__}",
                permanent=False,
                code="helpdesk-unreachable",
            ) from None

    def _send(self, method: str, address: str | None, content: dict[str, Any]) -> httpx.Response:
        url = httpx.URL(self.config.base_url.rstrip("/") + "/tickets")
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        extensions: dict[str, Any] = {}
        if address is not None:
            headers["host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = url.raw_host.decode("ascii")
            url = url.copy_with(host=address)
        # trust_env=False: proxies and .netrc of the process are not the
        # site's business, and a .netrc could replace the site's credentials.
        with httpx.Client(
            transport=self.config.transport,
            timeout=self.config.timeout,
            trust_env=False,
            follow_redirects=False,
            verify=client_tls(),
        ) as client:
            request = client.build_request(
                method, url, headers=headers, extensions=extensions, **content
            )
            auth = httpx.BasicAuth(self.config.username, self.config.api_key)
            return client.send(request, auth=auth)


def _ticket_id(response: httpx.Response) -> str:
    _raise_for_status(response)
    try:
        ticket_id = _id_of(response.json())
    except ValueError:
        ticket_id = None
    if ticket_id is None:
        raise TransportError(
            f"the help desk answered HTTP {response.status_code} without a ticket id",
            permanent=True,
            code="helpdesk-bad-answer",
        )
    return ticket_id


def _found_ticket_id(response: httpx.Response) -> str | None:
    """The first listed ticket's id; None for an empty list."""
    _raise_for_status(response)
    try:
        listed = response.json().get("data")
    except (ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list):
        raise TransportError(
            f"the help desk answered HTTP {response.status_code} without a list of tickets",
            permanent=True,
            code="helpdesk-bad-answer",
        )
    if not listed:
        return None
    found = _id_of(listed[0])
    if found is None:
        raise TransportError(
            f"the help desk listed a ticket without an id (HTTP {response.status_code})",
            permanent=True,
            code="helpdesk-bad-answer",
        )
    return found


def _id_of(ticket: Any) -> str | None:
    ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
    if ticket_id is None or isinstance(ticket_id, bool | dict | list):
        return None
    return str(ticket_id)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if 300 <= status < 400:
        raise TransportError(
            f"the help desk answered HTTP {status} (a redirect); give the API's own URL",
            permanent=True,
            code=f"http-{status}",
        )
    if status >= 400:
        raise TransportError(
            f"the help desk answered HTTP {status}: {_excerpt(response)}",
            permanent=is_permanent_status(status),
            code=f"http-{status}",
        )


def _excerpt(response: httpx.Response) -> str:
    """The error's own words: Gorgias puts them in ``error.msg`` or ``message``."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        words = error.get("msg") if isinstance(error, dict) else data.get("message")
        if isinstance(words, str) and words:
            return words[:EXCERPT_CHARS]
    # One line, whatever the answer was: it goes into a log line and a column.
    return " ".join(response.text.split())[:EXCERPT_CHARS] or "(no body)"
