"""SMS through Twilio's Messages API, with the official SDK (``twilio.rest``).

``send`` is one ``POST /2010-04-01/Accounts/{sid}/Messages.json``. Twilio
answers 201 with the message's SID and status ``queued`` (from a number)
or ``accepted`` (through a Messaging Service, which picks the sender
later); delivery is reported afterwards to the message's status callback.

A message with ``validity_seconds`` goes out with Twilio's
``ValidityPeriod``: Twilio drops it, unsent, if it is still in the sender's
queue after that many seconds, and reports error 30036.

Errors become :class:`~dunwell.channels.base.TransportError` with ``code``
set to Twilio's error code (``"21211"``), or ``"http-<status>"`` when the
answer has none, or ``"twilio-unreachable"`` when there is no answer at
all. Whether an error is permanent is decided by :func:`classify_twilio_error`,
which the status-callback handler also applies to the ``ErrorCode`` of an
undelivered message.

Twilio has no idempotency key for messages, so a crash between the API
call and the commit leaves the outcome unknown; :meth:`find_sent` looks
the message up before it is sent again.

Twilio calls the inbound webhook once: an error or a timeout is not tried
again unless the number's URL asks for it. :meth:`received` lists the texts
Twilio received, so the worker can store the ones whose webhook never got
through (:mod:`dunwell.services.twilio_catch_up`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from dunwell.channels.base import ReceivedSms, SendResult, SmsMessage, TransportError
from dunwell.clock import ensure_utc

TWILIO_API = "https://api.twilio.com"
#: Where each Twilio host's requests go under ``api_base`` (a local server in tests).
_UNDER_API_BASE = {TWILIO_API: "", "https://messaging.twilio.com": "/messaging"}
#: A Messaging Service with at most this many numbers and short codes has its
#: received texts listed number by number (``To=``). A larger pool would take
#: that many requests at every check, so its account's messages are read
#: whole instead, as Twilio's list cannot filter by service.
SERVICE_NUMBERS_LISTED_ONE_BY_ONE = 20
#: How many of the newest messages to a number ``find_sent`` looks through:
#: a customer gets a few texts per dunning cycle, so this reaches far back.
FIND_SENT_LIMIT = 50
#: Messages per page when listing: Twilio's largest page.
PAGE_SIZE = 1000

#: Error codes that may succeed later, whatever their HTTP status.
TRANSIENT_CODES = frozenset(
    {
        14107,  # SMS send rate limit exceeded
        20429,  # too many requests
        20500,  # internal error
        20503,  # service unavailable
        21611,  # the From number's queue of outgoing messages is full
        30001,  # queue overflow: Twilio's own backlog for this sender
        30008,  # unknown error: Twilio's advice is to try again
        30017,  # carrier network congestion
        30022,  # US A2P 10DLC throughput limit exceeded
        30023,  # US A2P 10DLC daily cap reached
        30500,  # Twilio internal error while processing the message
        63017,  # account-wide rate limit
        63038,  # account's daily message limit: resets after 24 hours
    }
)
#: Error codes that sending the same message again cannot fix. The 30xxx
#: ones arrive as ``ErrorCode`` on undelivered or failed status callbacks.
PERMANENT_CODES = frozenset(
    {
        20003,  # authentication failed: wrong account SID or token
        21211,  # invalid To number
        21408,  # sending to this region is not enabled on the account
        21610,  # the recipient replied STOP
        21612,  # no route from this sender to the To number
        21614,  # To is not a mobile number
        30002,  # account suspended: the merchant must sort it out with Twilio
        # Unreachable handset. The carrier already retried for the message's
        # validity period; the next dunning step sends a fresh message, so
        # re-sending this one would mostly duplicate it.
        30003,
        30004,  # blocked by the recipient or their carrier
        30005,  # unknown handset: the number does not exist
        30006,  # landline or unreachable carrier
        30007,  # filtered as spam: the same text would be filtered again
        30010,  # the price exceeds the account's MaxPrice
        30032,  # toll-free sender not verified
        30034,  # US A2P 10DLC sender not registered
    }
)


def classify_twilio_error(status: int | None, code: int | None) -> bool:
    """Whether an error from Twilio is permanent (see the module docstring).

    ``status`` is the HTTP status (None for a status callback's ``ErrorCode``
    or when there was no answer), ``code`` Twilio's error code if any. Known
    codes decide first; then HTTP 429 and 5xx are transient and other 4xx
    permanent (401/403 included: wrong credentials need a person). An
    unknown code with no status is transient: the retry limit bounds it.
    """
    if code in TRANSIENT_CODES:
        return False
    if code in PERMANENT_CODES:
        return True
    if status is None or status == 429 or status >= 500:
        return False
    return 400 <= status < 500


@dataclass(frozen=True, kw_only=True)
class TwilioConfig:
    """One site's Twilio account and sender.

    Set exactly one of ``from_number`` (an E.164 Twilio number, or an
    alphanumeric sender ID) and ``messaging_service_sid`` (``MG...``: Twilio
    picks the sender from the service's pool). ``api_base`` replaces
    ``https://api.twilio.com``, for tests against a local server.
    """

    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    api_base: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.account_sid or not self.auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if bool(self.from_number) == bool(self.messaging_service_sid):
            raise ValueError("set exactly one of from_number and messaging_service_sid")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


# The SDK is untyped, so its classes are Any to mypy.
class ApiBaseHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's own HTTP client, sending api.twilio.com requests to ``api_base``
    and messaging.twilio.com requests to ``api_base/messaging`` (a local
    server that speaks Twilio's API, in tests).

    Every request, paging links included, passes through ``request`` with
    an absolute URL, so rewriting the prefix here covers all of them.
    """

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._api_base = api_base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        for host, path in _UNDER_API_BASE.items():
            if url.startswith(host + "/"):
                url = self._api_base + path + url[len(host) :]
                break
        return super().request(method, url, *args, **kwargs)


class TwilioSmsTransport:
    """Sends SMS from one Twilio account; close it (or use ``with``) when done.

    It keeps a pool of HTTPS connections for the batch; like the SDK's
    client it should be used from one thread at a time.
    """

    name = "twilio"

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        if config.api_base:
            self._http = ApiBaseHttpClient(config.api_base, config.timeout)
        else:
            self._http = TwilioHttpClient(timeout=config.timeout)
        self._client = Client(
            config.account_sid,
            config.auth_token,
            http_client=self._http,
            # Each site has its own account: TWILIO_* variables of the process
            # (credentials, region, edge) must not fill gaps or move requests.
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )

    def send(self, message: SmsMessage) -> SendResult:
        """Hand one message to Twilio; raises :class:`TransportError`."""
        params: dict[str, str] = {"to": message.to, "body": message.body}
        if self.config.messaging_service_sid:
            params["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            params["from_"] = self.config.from_number or ""
        if message.status_callback:
            params["status_callback"] = message.status_callback
        if message.validity_seconds is not None:
            params["validity_period"] = str(message.validity_seconds)
        try:
            created = self._client.messages.create(**params)
        except (TwilioException, OSError) as exc:
            raise _transport_error(exc) from exc
        return SendResult(provider_id=created.sid, status=created.status or "queued")

    def find_sent(self, message: SmsMessage, since: datetime) -> SendResult | None:
        """The newest message from this account's sender with the same To and
        body, created at or after ``since``; None if Twilio has none.

        Looks through the ``FIND_SENT_LIMIT`` newest messages to the number.
        Twilio dates messages to the second, so ``since`` is rounded down to
        its second. The status is whatever Twilio reports now, ``failed`` and
        ``undelivered`` included: the message was accepted either way.
        """
        floor = ensure_utc(since).replace(microsecond=0)
        try:
            records = self._client.messages.list(to=message.to, limit=FIND_SENT_LIMIT)
        except (TwilioException, OSError) as exc:
            raise _transport_error(exc) from exc
        for record in records:
            created = record.date_created
            if record.body != message.body or created is None or created < floor:
                continue
            if self._ours(record):
                return SendResult(provider_id=record.sid, status=record.status or "queued")
        return None

    def received(self, since: datetime, until: datetime, limit: int) -> list[ReceivedSms]:
        """Texts this config's sender received at or after ``since`` and before
        ``until``, oldest first; see :class:`~dunwell.channels.base.SmsInbox`.

        From a number: the account's messages to that number. Through a
        Messaging Service: the messages to each of the service's numbers and
        short codes, or, for a pool larger than
        ``SERVICE_NUMBERS_LISTED_ONE_BY_ONE``, all the account's messages in
        the window; either way only the inbound ones the service handled are
        kept. Twilio pages newest first, so the whole window is read and the
        oldest ``limit`` are kept.
        """
        start, end = ensure_utc(since), ensure_utc(until)
        window: dict[str, Any] = {"date_sent_after": start, "date_sent_before": end}
        try:
            if self.config.from_number:
                numbers: list[str] | None = [self.config.from_number]
            else:
                numbers = self._service_numbers()
            listings = [{"to": n} for n in numbers] if numbers is not None else [{}]
            records = [
                record
                for to in listings
                for record in self._client.messages.stream(page_size=PAGE_SIZE, **window, **to)
            ]
        except (TwilioException, OSError) as exc:
            raise _transport_error(exc) from exc
        found = [
            ReceivedSms(r.sid, r.from_, r.to, r.body or "", r.date_sent)
            for r in records
            if r.direction == "inbound"
            and r.date_sent is not None
            and start <= r.date_sent < end
            and self._received_by_us(r)
        ]
        found.sort(key=lambda text: (text.received_at, text.sid))
        return found[:limit]

    def statuses(self, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """Twilio's status and error code of each message (``GET /Messages/{sid}.json``).

        A SID Twilio does not know (404) is left out: the message was sent
        from another account, or through the sandbox before Twilio was set up.
        """
        found: dict[str, tuple[str, str | None]] = {}
        for sid in ids:
            try:
                record = self._client.messages(sid).fetch()
            except TwilioRestException as exc:
                if exc.status == 404:
                    continue
                raise _transport_error(exc) from exc
            except (TwilioException, OSError) as exc:
                raise _transport_error(exc) from exc
            code = None if record.error_code is None else str(record.error_code)
            found[sid] = (str(record.status), code)
        return found

    def _service_numbers(self) -> list[str] | None:
        """The Messaging Service's numbers and short codes, or None when there
        are too many to list the texts of one by one."""
        sid = self.config.messaging_service_sid
        service = self._client.messaging.v1.services(sid)
        cap = SERVICE_NUMBERS_LISTED_ONE_BY_ONE + 1
        try:
            numbers = [n.phone_number for n in service.phone_numbers.stream(limit=cap)]
            numbers += [c.short_code for c in service.short_codes.stream(limit=cap)]
        except TwilioException as exc:
            if _status_and_code(exc)[0] != 404:
                raise
            # The SDK reports a missing page without Twilio's words: say what is missing.
            message = f"Twilio has no Messaging Service {sid} in this account; check the SID"
            raise TransportError(message, permanent=True, code="20404") from exc
        found = [number for number in numbers if number]
        return found if len(found) <= SERVICE_NUMBERS_LISTED_ONE_BY_ONE else None

    def _received_by_us(self, record: Any) -> bool:
        if self.config.messaging_service_sid:
            return bool(record.messaging_service_sid == self.config.messaging_service_sid)
        return bool(record.to == self.config.from_number)

    def _ours(self, record: Any) -> bool:
        """Whether a listed message came from this config's sender."""
        if self.config.messaging_service_sid:
            return bool(record.messaging_service_sid == self.config.messaging_service_sid)
        return bool(record.from_ == self.config.from_number)

    def close(self) -> None:
        """Close pooled connections."""
        if self._http.session is not None:
            self._http.session.close()

    def __enter__(self) -> TwilioSmsTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _transport_error(exc: Exception) -> TransportError:
    """Map the SDK's exceptions and ``requests``' (which are OSErrors)."""
    if isinstance(exc, OSError):
        # Refused, reset, DNS, TLS or a timeout: no answer, maybe later.
        message = f"Twilio unreachable: {type(exc).__name__}: {exc}"
        unsent = _never_connected(exc)
        return TransportError(
            message,
            permanent=False,
            code="twilio-unreachable",
            turned_away=unsent,
            # The request may have reached Twilio: a read timed out, or the
            # connection broke after sending. The next attempt looks first.
            in_doubt=not unsent,
        )
    status, code, detail = _status_and_code(exc)
    label = str(code) if code is not None else f"http-{status}" if status else "twilio-error"
    return TransportError(
        f"Twilio {status or 'error'}: {detail}",
        permanent=classify_twilio_error(status, code),
        code=label,
        # Too many requests at once: Twilio read none of this one.
        turned_away=status == 429 or code == 20429,
    )


def _never_connected(exc: OSError) -> bool:
    """Whether the request failed before it was sent: no connection was made.

    ``requests`` wraps urllib3's error; a refused, unresolvable or
    timed-out connection is a ``MaxRetryError`` for a ``ConnectTimeoutError``
    (of which ``NewConnectionError`` is a kind). The SDK's client does not
    retry, so anything else failed after the request went out.
    """
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ConnectTimeoutError)


def _status_and_code(exc: Exception) -> tuple[int | None, int | None, str]:
    """HTTP status, Twilio error code and message of an SDK exception."""
    if isinstance(exc, TwilioRestException):
        # The SDK puts the HTTP status in ``code`` when the body names none.
        code = exc.code if exc.code != exc.status else None
        return exc.status, code, str(exc.msg)
    status = getattr(exc, "status", None)
    if isinstance(status, int):  # TwilioServiceException (RFC 9457 problem details)
        return status, getattr(exc, "code", None), str(getattr(exc, "title", exc))
    # A list page that was not 200: the SDK raises TwilioException("Unable to
    # fetch page", response) without reading the error body.
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    code = _body_code(getattr(response, "text", None))
    return status, code, str(exc.args[0] if exc.args else exc)


def _body_code(text: object) -> int | None:
    """The ``code`` of a Twilio error body, if it is one."""
    try:
        body = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None
