"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a background thread.

    with SmtpServer() as server:                      # plain, no AUTH
        ...send to server.host, server.port...
        [received] = server.messages

Options: ``tls="starttls"`` (upgrade on port ``server.port``) or ``tls="tls"``
(TLS from the first byte) with a self-signed certificate made for the test
(trust it with ``server.client_context()``); ``users={"name": "password"}``
offers AUTH PLAIN and LOGIN, and ``require_auth=True`` refuses mail from
anyone who has not logged in (with STARTTLS only: aiosmtpd warns otherwise);
``idle_timeout`` closes idle connections like a real relay does;
``server.max_connections = 2`` greets any more at once with "421".

Failures on demand: ``server.fail_next("RCPT", 451)`` makes the next RCPT
command fail (``times=`` for more), ``server.reject("a@x.example", 550)``
refuses one recipient for good.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import ipaddress
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Command = Literal["RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: email.message.EmailMessage
    login: str | None  # the AUTH user, if the client logged in
    tls: bool  # whether the message came over an encrypted connection
    smtputf8: bool  # whether MAIL FROM asked for SMTPUTF8


@dataclass
class SelfSignedCertificate:
    """A key and certificate for ``localhost`` and 127.0.0.1, valid for a day."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def generate(cls) -> SelfSignedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), key_pem)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain reads files only; they are needed just for this call.
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate and nothing else."""
        return ssl.create_default_context(cadata=self.cert_pem.decode())


@dataclass
class _State:
    messages: list[Received] = field(default_factory=list)
    failures: dict[str, deque[str]] = field(
        default_factory=lambda: {"RCPT": deque(), "DATA": deque()}
    )
    rejected: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    closed: int = 0
    #: Seconds a message waits before its "250 queued", as a relay that
    #: scans or stores it first does (the benchmarks' provider latency).
    delay: float = 0.0
    #: Connections open at once beyond this are greeted "421" and closed,
    #: as relays with a per-client connection limit do.
    max_connections: int | None = None
    turned_away: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    #: Connections being served now (not counting those turned away).
    serving: int = 0

    def admit(self) -> bool:
        """Serve a connection just opened, unless it is one too many (counted)."""
        with self.lock:
            if self.max_connections is not None and self.serving >= self.max_connections:
                self.turned_away += 1
                return False
            self.serving += 1
            return True

    def take_failure(self, command: Command) -> str | None:
        with self.lock:
            pending = self.failures[command]
            return pending.popleft() if pending else None


class _Handler:
    """aiosmtpd hooks: store what arrives, answer injected failures."""

    def __init__(self, state: _State, users: dict[str, str]) -> None:
        self._state = state
        self._users = users

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        failure = self._state.take_failure("RCPT") or self._state.rejected.get(address)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        failure = self._state.take_failure("DATA")
        if failure:
            return failure
        data = envelope.original_content or b""
        # Line ends as a mail client would store them (the wire uses CRLF).
        unix = data.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(unix, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        assert server.transport is not None
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message=parsed,
            login=login,
            tls=server.transport.get_extra_info("ssl_object") is not None,
            smtputf8=envelope.smtp_utf8,
        )
        with self._state.lock:
            self._state.messages.append(received)
        if self._state.delay:
            await asyncio.sleep(self._state.delay)  # other connections go on meanwhile
        return "250 2.0.0 OK: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        # handled=False: aiosmtpd itself answers a failure with "535".
        ok = self._users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _Controller(Controller):
    """aiosmtpd's controller, bound to a free port chosen by the OS."""

    def __init__(self, handler: _Handler, state: _State, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)
        self._state = state

    def _trigger_server(self) -> None:
        # The controller connects to self.port to check the server is up;
        # with port 0 that has to be the port actually bound.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]

    def factory(self) -> SMTP:
        with self._state.lock:
            self._state.connections += 1
        return _CountingSMTP(self._state, self.handler, **self.SMTP_kwargs)


class _CountingSMTP(SMTP):
    """aiosmtpd's protocol, counting closed connections."""

    def __init__(self, state: _State, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = state

    _served = False

    async def _handle_client(self) -> None:
        if not self._state.admit():
            await self.push("421 4.7.0 Too many connections from your host, try later")
            assert self.transport is not None
            self.transport.close()
            return
        self._served = True
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        with self._state.lock:
            self._state.closed += 1
            self._state.serving -= self._served


class SmtpServer:
    """An aiosmtpd server; use it as a context manager, or start() and stop()."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: Literal["starttls", "tls"] | None = None,
        users: dict[str, str] | None = None,
        require_auth: bool = False,
        idle_timeout: float = 60.0,
        smtputf8: bool = True,
    ) -> None:
        if require_auth and tls != "starttls":
            # aiosmtpd only knows a STARTTLS connection as encrypted, and
            # warns when AUTH is required on what it thinks is clear text.
            raise ValueError("require_auth needs tls='starttls'")
        self.certificate = SelfSignedCertificate.generate() if tls else None
        self._state = _State()
        handler = _Handler(self._state, dict(users or {}))
        kwargs: dict[str, Any] = {
            "server_hostname": "mx.dunwell.test",  # instead of a slow getfqdn()
            "timeout": idle_timeout,
            "enable_SMTPUTF8": smtputf8,
        }
        if users is not None:
            kwargs["authenticator"] = handler.authenticate
            kwargs["auth_required"] = require_auth
            # Loopback tests may log in without TLS; real relays should not.
            # On implicit TLS aiosmtpd does not know it is encrypted.
            kwargs["auth_require_tls"] = tls == "starttls"
        if self.certificate and tls == "starttls":
            kwargs["tls_context"] = self.certificate.server_context()
        elif self.certificate and tls == "tls":
            kwargs["ssl_context"] = self.certificate.server_context()
        self._controller = _Controller(handler, self._state, **kwargs)

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    @property
    def messages(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def delay(self) -> float:
        return self._state.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._state.delay = seconds

    @property
    def max_connections(self) -> int | None:
        return self._state.max_connections

    @max_connections.setter
    def max_connections(self, limit: int | None) -> None:
        self._state.max_connections = limit

    @property
    def turned_away(self) -> int:
        """Connections greeted "421" because ``max_connections`` were open."""
        with self._state.lock:
            return self._state.turned_away

    @property
    def connections(self) -> int:
        """Connections opened so far (the controller's own start-up check is one)."""
        with self._state.lock:
            return self._state.connections

    def wait_until_idle(self, timeout: float = 5.0) -> None:
        """Wait until every connection has been closed (by either side)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._state.lock:
                if self._state.closed >= self._state.connections:
                    return
            time.sleep(0.01)
        raise TimeoutError("SMTP connections still open")

    def client_context(self) -> ssl.SSLContext:
        assert self.certificate is not None, "this server has no TLS"
        return self.certificate.client_context()

    def fail_next(
        self, command: Command, code: int = 451, *, times: int = 1, text: str | None = None
    ) -> None:
        """Answer the next ``times`` RCPT or DATA commands with ``code``."""
        reply = f"{code} {text or ('Try again later' if code < 500 else 'Refused')}"
        with self._state.lock:
            self._state.failures[command].extend([reply] * times)

    def reject(self, address: str, code: int = 550, text: str = "No such user") -> None:
        """Refuse every RCPT for ``address``."""
        with self._state.lock:
            self._state.rejected[address] = f"{code} {text}"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
