"""Email through any SMTP relay, with the standard library's ``smtplib``.

A session opens one connection on its first ``send`` and reuses it for the
batch. Each message is one SMTP transaction (MAIL, RCPT for every envelope
recipient, DATA); the ``Bcc`` addresses are envelope recipients only and
never appear in a header.

How failures map onto :class:`~dunwell.channels.base.TransportError`:

* a reply code: 5xx is permanent, 4xx transient; ``code`` is ``"smtp-550"``,
  ``"smtp-451"``... This covers refused recipients, senders and data.
* bad credentials (535) are permanent: the settings need fixing. So are a
  server without STARTTLS or AUTH when the settings ask for them, a
  certificate that does not verify (``"smtp-tls-verify"``) and other TLS
  handshake failures (``"smtp-tls"``), usually TLS on a STARTTLS port.
* no answer: connection refused, reset or timed out, the server hung up
  (``"smtp-connect"``, ``"smtp-timeout"``, ``"smtp-disconnected"``) are
  transient.
* a transient failure while opening the connection (refused, a "421 too
  many connections" greeting, a new connection closed at the first
  command) is also ``turned_away``: nothing of the message went out, so the
  delivery worker hands it to a lane whose connection is already open.
* a connection that times out or breaks during DATA is ``in_doubt``: the
  relay may have queued the message before its answer was lost.

The timeout is the time a whole message may take, not only each read and
write: a relay that answers every command just before the socket's timeout
would otherwise make one message last many timeouts, past the lease of the
batch it was sent in, and another worker would send it again. A watchdog
cuts the connection when a message's time is up (``"smtp-timeout"``).

Relays close idle connections. If the connection a session kept turns out
to be dead when the next message starts (the MAIL command fails or is
answered with 421), the session reconnects once and sends again: nothing
of that message had reached the server, so this cannot duplicate it.
Errors after MAIL are reported, never retried here, because the server may
already have queued the message.
"""

from __future__ import annotations

import contextlib
import email.message
import email.policy
import functools
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime, getaddresses
from types import TracebackType
from typing import Literal

from dunwell.channels.base import EmailMessage, SendResult, TransportError
from dunwell.clock import Clock, SystemClock

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]
SECURITY_MODES: tuple[Security, ...] = ("starttls", "tls", "none")

# 7-bit bodies (quoted-printable or base64 for non-ASCII text) go through any
# relay, including the few that still lack 8BITMIME.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")
# Non-ASCII addresses need SMTPUTF8: raw UTF-8 headers and commands.
_UTF8_POLICY = _POLICY.clone(utf8=True)

#: Headers built from the message's fields; ``EmailMessage.headers`` may not set them.
_RESERVED_HEADERS = frozenset(
    {
        "bcc",
        "cc",
        "content-transfer-encoding",
        "content-type",
        "date",
        "from",
        "message-id",
        "mime-version",
        "reply-to",
        "sender",
        "subject",
        "to",
    }
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII but ":"

#: A connection that died while idle fails on the first command in one of these ways.
_DROPPED = (
    smtplib.SMTPServerDisconnected,
    ConnectionError,
    TimeoutError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
#: The server went away mid-conversation (as opposed to never answering).
_HUNG_UP = (
    smtplib.SMTPServerDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    """One site's relay settings.

    ``security``: ``"starttls"`` connects in plain text and upgrades (port
    587), ``"tls"`` is TLS from the first byte (port 465), ``"none"`` never
    encrypts (a relay on the same host or network only). ``from_addr`` and
    ``reply_to`` fill in what a message leaves empty; ``bcc_merchant`` gets
    a blind copy of every message.
    """

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_addr: str | None = None
    reply_to: str | None = None
    bcc_merchant: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}, not {self.security!r}")
        if self.username and self.password is None:
            raise ValueError("a username needs a password")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class _Envelope:
    sender: str
    to: str
    recipients: tuple[str, ...]
    payload: bytes
    utf8: bool


class SmtpTransport:
    """Sends email through the relay in ``config``; see :meth:`session`."""

    name = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``ssl_context`` verifies the relay (default: the system's trusted
        certificates); ``clock`` dates the messages."""
        self.config = config
        self._ssl_context = ssl_context or _system_context()
        self._clock = clock or SystemClock()

    def session(self) -> SmtpSession:
        """A sender that keeps one connection until the ``with`` block ends."""
        return SmtpSession(self)

    def _connect(self, within: float, opened: Callable[[smtplib.SMTP], None]) -> smtplib.SMTP:
        """Open, secure and log in a connection; raises smtplib's or socket errors.

        Connecting and the greeting take at most ``within`` seconds; then
        ``opened`` gets the connection (the session's watchdog can cut it
        from there on) and each later command has the whole timeout.
        """
        config = self.config
        conn: smtplib.SMTP
        # The constructors connect and read the greeting, a timeout each;
        # on failure they close the socket themselves before raising.
        step = max(within / 2, 0.001)
        if config.security == "tls":
            conn = smtplib.SMTP_SSL(
                config.host, config.port, timeout=step, context=self._ssl_context
            )
        else:
            conn = smtplib.SMTP(config.host, config.port, timeout=step)
        try:
            opened(conn)
            if conn.sock is not None:
                conn.sock.settimeout(config.timeout)
            conn.ehlo()
            if config.security == "starttls":
                conn.starttls(context=self._ssl_context)
                conn.ehlo()
            if config.username and config.password is not None:
                conn.login(config.username, config.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def _envelope(self, message: EmailMessage) -> _Envelope:
        """The SMTP envelope and the encoded message; a malformed message is
        a permanent :class:`TransportError`."""
        try:
            mime = self._mime(message)
            sender = _addr_spec(str(mime["From"]))
            to = _addr_spec(message.to)
            bcc = [message.bcc, (self.config.bcc_merchant,) if self.config.bcc_merchant else ()]
            copies = [_addr_spec(address) for group in bcc for address in group]
            recipients = tuple(dict.fromkeys([to, *copies]))  # ordered, without repeats
            utf8 = not all(address.isascii() for address in (sender, *recipients))
            # Encoding errors (lone surrogates, say) are ValueErrors too.
            payload = mime.as_bytes(policy=_UTF8_POLICY if utf8 else _POLICY)
        except ValueError as exc:
            error = TransportError(f"invalid email: {exc}", permanent=True, code="invalid-message")
            raise error from exc
        return _Envelope(sender, to, recipients, payload, utf8)

    def _mime(self, message: EmailMessage) -> email.message.EmailMessage:
        sender = message.from_addr or self.config.from_addr
        if not sender:
            raise ValueError("no From address: set it on the message or in the SMTP settings")
        mime = email.message.EmailMessage(policy=_POLICY)
        mime["From"] = sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(self._clock.now())
        mime["Message-ID"] = message.message_id
        reply_to = message.reply_to or self.config.reply_to
        if reply_to:
            mime["Reply-To"] = reply_to
        for name, value in message.headers.items():
            if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} cannot be set as an extra header")
            mime[name] = value
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
        return mime


class SmtpSession:
    """One connection reused for many messages; use it in a ``with`` block."""

    def __init__(self, transport: SmtpTransport) -> None:
        self._transport = transport
        self._conn: smtplib.SMTP | None = None
        # What the watchdog of the message in hand may cut, under this lock.
        self._lock = threading.Lock()
        self._opening: smtplib.SMTP | None = None
        self._deadline = 0.0
        self._expired = False
        self._data_started = False

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT if the server still listens, and close the socket."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass  # already gone: nothing left to say goodbye to
        finally:
            conn.close()

    def send(self, message: EmailMessage) -> SendResult:
        """Deliver one message within the timeout in all; raises :class:`TransportError`."""
        limit = self._transport.config.timeout
        with self._lock:
            self._deadline = time.monotonic() + limit
            self._expired = False
            self._data_started = False
        watchdog = threading.Timer(limit, self._expire, args=(self._deadline,))
        watchdog.daemon = True
        watchdog.start()
        try:
            return self._send(message)
        except TransportError as error:
            if not self._expired:
                raise
            # Whatever the cut connection raised (a reset, a TLS error), the
            # message ran out of time; only what DATA had begun may have arrived.
            late = TransportError(
                f"SMTP: no answer within {limit:g} s in all", permanent=False, code="smtp-timeout"
            )
            late.in_doubt = self._data_started
            late.turned_away = error.turned_away and not self._data_started
            raise late from error
        finally:
            watchdog.cancel()

    def _expire(self, deadline: float) -> None:
        """The watchdog: end the message's connection if its time is up."""
        with self._lock:
            if deadline != self._deadline:  # a later message's; this one ended
                return
            self._expired = True
            conn = self._opening or self._conn
            if conn is not None and conn.sock is not None:
                # Wakes the thread blocked in a read or write on it; a socket
                # already closed has nothing to wake.
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)

    def _send(self, message: EmailMessage) -> SendResult:
        envelope = self._transport._envelope(message)
        reconnected = False
        while True:
            fresh = self._conn is None
            try:
                conn = self._connection()
            except (smtplib.SMTPException, OSError) as exc:
                # Nothing of the message went out: the relay is down, or
                # would not take one more connection ("421 too many").
                raise _turned_away(_classify(exc)) from exc
            try:
                self._transact(conn, envelope)
            except _StaleConnection as stale:
                self._drop()
                if fresh or reconnected:
                    # A new connection closed at once, before the message.
                    raise _turned_away(_classify(stale.cause)) from stale.cause
                reconnected = True
                log.info("SMTP connection to %s was closed; reconnecting", self._host())
                continue
            except _NoAnswer as lost:
                self._drop()
                error = _classify(lost.cause)
                error.in_doubt = not error.permanent
                raise error from lost.cause
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise _classify(exc) from exc
            return SendResult(provider_id=message.message_id, status="sent")

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            within = self._deadline - time.monotonic()
            if within <= 0 or self._expired:
                raise TimeoutError("no time left to connect")
            try:
                self._conn = self._transport._connect(within, self._opened)
            finally:
                with self._lock:
                    self._opening = None
        return self._conn

    def _opened(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            if self._expired:
                raise TimeoutError("the message's time ran out while connecting")
            self._opening = conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _host(self) -> str:
        return f"{self._transport.config.host}:{self._transport.config.port}"

    def _transact(self, conn: smtplib.SMTP, envelope: _Envelope) -> None:
        """One MAIL/RCPT/DATA transaction. Refusals raise TransportError and
        leave the connection ready for the next message."""
        self._mail(conn, envelope)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in envelope.recipients:
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if envelope.to in refused:
            # The blind copies must not go out alone: abandon the whole message.
            self._abandon(conn)
            raise _reply_error(*refused[envelope.to], f"recipient {envelope.to}")
        for recipient, (code, reply) in refused.items():
            log.warning("SMTP refused blind copy to %s: %s %s", recipient, code, _text(reply))
        answer: bytes | str
        self._data_started = True
        try:
            code, answer = conn.data(envelope.payload)
        except smtplib.SMTPDataError as exc:  # DATA itself was refused
            code, answer = exc.smtp_code, exc.smtp_error
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The whole message may have reached the relay, and its answer
            # was lost: the relay may have queued it.
            raise _NoAnswer(exc) from exc
        if code != 250:
            self._abandon(conn)
            raise _reply_error(code, answer, "message")

    def _mail(self, conn: smtplib.SMTP, envelope: _Envelope) -> None:
        """Start the transaction; a dead connection shows here, before any
        part of the message has been sent."""
        options = ["SMTPUTF8", "BODY=8BITMIME"] if envelope.utf8 else []
        try:
            code, reply = conn.mail(envelope.sender, options)
        except _DROPPED as exc:
            raise _StaleConnection(exc) from exc
        if code == 421:  # the server is closing this connection
            raise _StaleConnection(smtplib.SMTPSenderRefused(code, reply, envelope.sender))
        if code != 250:
            self._abandon(conn)
            raise _reply_error(code, reply, f"sender {envelope.sender}")

    def _abandon(self, conn: smtplib.SMTP) -> None:
        """Reset the transaction so the connection can carry the next message."""
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


class _NoAnswer(Exception):
    """The connection failed during DATA: the relay may have the message."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _StaleConnection(Exception):
    """The kept connection was dead before this message reached the server."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _classify(exc: Exception) -> TransportError:
    """Map smtplib's and the socket's exceptions (see the module docstring)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        # Auth (535/454), greeting (554/421), HELO, sender and data refusals.
        return _reply_error(exc.smtp_code, exc.smtp_error, type(exc).__name__)
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):
        # smtplib reports a reply that never came as a disconnection.
        return TransportError(f"SMTP: {exc}", permanent=False, code="smtp-timeout")
    if isinstance(exc, _HUNG_UP):
        return TransportError(f"SMTP: {exc!r}", permanent=False, code="smtp-disconnected")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TransportError(f"SMTP: {exc}", permanent=True, code="smtp-unsupported")
    if isinstance(exc, smtplib.SMTPException):
        # e.g. "No suitable authentication method found": the settings need fixing.
        return TransportError(f"SMTP: {exc}", permanent=True, code="smtp-error")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportError(f"SMTP TLS: {exc}", permanent=True, code="smtp-tls-verify")
    if isinstance(exc, ssl.SSLError):
        return TransportError(f"SMTP TLS: {exc}", permanent=True, code="smtp-tls")
    if isinstance(exc, TimeoutError):
        return TransportError(f"SMTP: timed out ({exc})", permanent=False, code="smtp-timeout")
    # Refused, unreachable, unknown host: maybe down for a while.
    return TransportError(f"SMTP: {exc!r}", permanent=False, code="smtp-connect")


def _turned_away(error: TransportError) -> TransportError:
    """Mark a transient failure to connect: another open connection may send."""
    error.turned_away = not error.permanent
    return error


@functools.cache
def _system_context() -> ssl.SSLContext:
    # Loading the system's certificates takes a while; a context can be
    # shared by any number of connections.
    return ssl.create_default_context()


def _reply_error(code: int, reply: bytes | str, what: str) -> TransportError:
    # Only 5xx is a definite no; 4xx and anything odd may work later.
    permanent = 500 <= code < 600
    message = f"SMTP {what} refused: {code} {_text(reply)}"
    return TransportError(message, permanent=permanent, code=f"smtp-{code}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _addr_spec(value: str) -> str:
    """The bare address in ``value`` (``"Ann <ann@x.example>"`` -> ``ann@x.example``)."""
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise ValueError(f"not one email address: {value!r}")
    return parsed[0][1]
