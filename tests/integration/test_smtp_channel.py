"""The SMTP transport against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dunwell.channels.base import EmailMessage, TransportError
from dunwell.channels.smtp import SmtpConfig, SmtpTransport
from dunwell.clock import FixedClock
from tests.integration.smtp_server import Received, SmtpServer

SENT_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

MakeTransport = Callable[..., SmtpTransport]


def message(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "to": "Ann Customer <ann@customer.example>",
        "from_addr": "Acme Billing <billing@acme.example>",
        "subject": "Your payment did not go through",
        "text": "Hi Ann,\nplease update your card.\n",
        "html": "<p>Hi Ann,</p><p>please update your card.</p>",
        "message_id": "<outbox-123.site-4@dunwell.example>",
        "reply_to": "support@acme.example",
        "headers": {"X-Dunwell-Message": "outbox-123"},
    }
    return EmailMessage(**{**fields, **overrides})


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def make_transport(server: SmtpServer) -> MakeTransport:
    """A transport for ``server`` (or ``at=`` another), settings overridable."""

    def make(at: SmtpServer | None = None, **overrides: Any) -> SmtpTransport:
        target = at or server
        settings: dict[str, Any] = {"host": target.host, "port": target.port, "security": "none"}
        config = SmtpConfig(**{**settings, "timeout": 5.0, **overrides})
        context = target.client_context() if target.certificate else None
        return SmtpTransport(config, ssl_context=context, clock=FixedClock(SENT_AT))

    return make


def send_one(transport: SmtpTransport, email: EmailMessage | None = None) -> None:
    with transport.session() as session:
        session.send(email or message())


def send_failing(transport: SmtpTransport, email: EmailMessage | None = None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        send_one(transport, email)
    return caught.value


def only(server: SmtpServer) -> Received:
    [received] = server.messages
    return received


def test_a_message_arrives_with_headers_built_from_its_fields(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    send_one(make_transport())

    headers = only(server).message
    assert headers["From"] == "Acme Billing <billing@acme.example>"
    assert headers["To"] == "Ann Customer <ann@customer.example>"
    assert headers["Subject"] == "Your payment did not go through"
    assert headers["Reply-To"] == "support@acme.example"
    assert headers["Message-ID"] == "<outbox-123.site-4@dunwell.example>"
    assert headers["Date"].datetime == SENT_AT
    assert headers["X-Dunwell-Message"] == "outbox-123"


def test_the_envelope_goes_from_the_sender_to_the_bare_addresses(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    send_one(make_transport())

    assert only(server).mail_from == "billing@acme.example"
    assert only(server).rcpt_tos == ("ann@customer.example",)


def test_blind_copies_are_envelope_recipients_and_never_a_header(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(bcc_merchant="owner@acme.example")

    send_one(transport, message(bcc=("audit@acme.example",)))

    received = only(server)
    assert received.rcpt_tos == (
        "ann@customer.example",
        "audit@acme.example",
        "owner@acme.example",
    )
    assert "Bcc" not in received.message
    assert b"audit@acme.example" not in received.data
    assert b"owner@acme.example" not in received.data


def test_text_and_html_arrive_as_two_alternatives_that_decode_back(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    send_one(make_transport())

    mime = only(server).message
    assert mime.get_content_type() == "multipart/alternative"
    plain, html = mime.get_body(("plain",)), mime.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Hi Ann,\nplease update your card.\n"
    assert html.get_content() == "<p>Hi Ann,</p><p>please update your card.</p>\n"


def test_a_message_without_html_is_plain_text(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    send_one(make_transport(), message(html=None))

    mime = only(server).message
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content() == "Hi Ann,\nplease update your card.\n"


def test_french_and_german_text_survive_in_subject_and_body(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    french = "Votre paiement a échoué : mettez à jour votre carte, s'il vous plaît."
    german = "Grüße aus Köln: bitte aktualisieren Sie Ihre Zahlungsdaten (Straße, Größe)."
    email = message(
        to="Zoë Müller <zoe@customer.example>",
        subject="Paiement échoué · Zahlung fehlgeschlagen",
        text=f"{french}\n{german}\n",
        html=f"<p>{french}</p><p>{german}</p>",
    )

    send_one(make_transport(), email)

    received = only(server)
    assert received.data.isascii()  # 7-bit on the wire: any relay can carry it
    mime = received.message
    assert mime["Subject"] == "Paiement échoué · Zahlung fehlgeschlagen"
    assert mime["To"] == "Zoë Müller <zoe@customer.example>"
    plain, html = mime.get_body(("plain",)), mime.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == f"{french}\n{german}\n"
    assert german in html.get_content()


def test_an_address_with_non_ascii_letters_goes_out_over_smtputf8(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    send_one(make_transport(), message(to="jürgen@müller.example"))

    assert only(server).rcpt_tos == ("jürgen@müller.example",)
    assert only(server).smtputf8


def test_a_non_ascii_address_is_permanent_when_the_server_lacks_smtputf8(
    make_transport: MakeTransport,
) -> None:
    with SmtpServer(smtputf8=False) as ascii_only:
        error = send_failing(make_transport(ascii_only), message(to="jürgen@müller.example"))

    assert (error.permanent, error.code) == (True, "smtp-unsupported")


def test_the_settings_fill_in_sender_and_reply_to_when_the_message_has_none(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(from_addr="noreply@acme.example", reply_to="help@acme.example")

    send_one(transport, message(from_addr="", reply_to=None))

    assert only(server).message["From"] == "noreply@acme.example"
    assert only(server).message["Reply-To"] == "help@acme.example"


def test_the_same_message_keeps_its_message_id_on_every_attempt(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    send_one(transport)
    send_one(transport)

    ids = {received.message["Message-ID"] for received in server.messages}
    assert ids == {"<outbox-123.site-4@dunwell.example>"}


def test_the_result_names_the_message_id_and_sent(make_transport: MakeTransport) -> None:
    with make_transport().session() as session:
        result = session.send(message())

    assert (result.provider_id, result.status) == ("<outbox-123.site-4@dunwell.example>", "sent")


def test_a_session_sends_many_messages_over_one_connection(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    before = server.connections
    with make_transport().session() as session:
        for number in range(5):
            session.send(message(message_id=f"<outbox-{number}@dunwell.example>"))

    assert len(server.messages) == 5
    assert server.connections - before == 1


def test_a_session_reconnects_once_when_the_server_closed_the_idle_connection(
    make_transport: MakeTransport,
) -> None:
    with SmtpServer(idle_timeout=0.2) as impatient:
        before = impatient.connections
        with make_transport(impatient).session() as session:
            session.send(message(message_id="<first@dunwell.example>"))
            impatient.wait_until_idle()  # the server hung up on the idle connection
            session.send(message(message_id="<second@dunwell.example>"))

        assert [r.message["Message-ID"] for r in impatient.messages] == [
            "<first@dunwell.example>",
            "<second@dunwell.example>",
        ]
        assert impatient.connections - before == 2


def test_starttls_encrypts_the_connection_and_logs_in(make_transport: MakeTransport) -> None:
    with SmtpServer(tls="starttls", users={"acme": "s3cret"}, require_auth=True) as secure:
        transport = make_transport(secure, security="starttls", username="acme", password="s3cret")
        send_one(transport)

        assert (only(secure).tls, only(secure).login) == (True, "acme")


def test_implicit_tls_encrypts_from_the_first_byte(make_transport: MakeTransport) -> None:
    with SmtpServer(tls="tls", users={"acme": "s3cret"}) as secure:
        transport = make_transport(secure, security="tls", username="acme", password="s3cret")
        send_one(transport)

        assert (only(secure).tls, only(secure).login) == (True, "acme")


def test_a_loopback_relay_accepts_a_login_without_tls(make_transport: MakeTransport) -> None:
    with SmtpServer(users={"acme": "s3cret"}) as relay:
        send_one(make_transport(relay, username="acme", password="s3cret"))

        assert (only(relay).tls, only(relay).login) == (False, "acme")


def test_a_wrong_password_is_permanent(make_transport: MakeTransport) -> None:
    with SmtpServer(tls="starttls", users={"acme": "s3cret"}, require_auth=True) as secure:
        transport = make_transport(secure, security="starttls", username="acme", password="nope")
        error = send_failing(transport)

        assert (error.permanent, error.code) == (True, "smtp-535")
        assert secure.messages == []


def test_a_certificate_the_client_does_not_trust_is_permanent() -> None:
    with SmtpServer(tls="starttls") as secure:
        config = SmtpConfig(host=secure.host, port=secure.port, security="starttls", timeout=5)
        error = send_failing(SmtpTransport(config))  # the system's trust store only

    assert (error.permanent, error.code) == (True, "smtp-tls-verify")


def test_asking_for_starttls_from_a_server_without_it_is_permanent(
    make_transport: MakeTransport,
) -> None:
    error = send_failing(make_transport(security="starttls"))

    assert (error.permanent, error.code) == (True, "smtp-unsupported")


def test_implicit_tls_against_a_plain_text_port_is_permanent(
    make_transport: MakeTransport,
) -> None:
    error = send_failing(make_transport(security="tls"))

    assert (error.permanent, error.code) == (True, "smtp-tls")


@pytest.mark.parametrize(
    ("command", "code", "permanent"),
    [("RCPT", 451, False), ("RCPT", 550, True), ("DATA", 451, False), ("DATA", 554, True)],
)
def test_4xx_replies_are_transient_and_5xx_permanent(
    server: SmtpServer, make_transport: MakeTransport, command: Any, code: int, permanent: bool
) -> None:
    server.fail_next(command, code)

    error = send_failing(make_transport())

    assert (error.permanent, error.code) == (permanent, f"smtp-{code}")
    assert not error.turned_away  # the relay took the connection and refused the message
    assert server.messages == []


def test_a_relay_with_its_connections_all_taken_turns_the_next_away(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    server.max_connections = 1
    transport = make_transport()
    with transport.session() as first:
        first.send(message())  # holds the one connection the relay allows
        error = send_failing(transport, message(message_id="<second@dunwell.example>"))
    send_one(transport, message(message_id="<later@dunwell.example>"))

    assert (error.permanent, error.code, error.turned_away) == (False, "smtp-421", True)
    assert server.turned_away == 1
    assert [m.message["Message-ID"] for m in server.messages] == [
        "<outbox-123.site-4@dunwell.example>",
        "<later@dunwell.example>",
    ]


def test_a_relay_whose_answer_to_the_message_never_comes_leaves_it_in_doubt(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    server.delay = 1.0  # the relay stores the message, then answers too late

    error = send_failing(make_transport(timeout=0.3))

    assert (error.permanent, error.code, error.in_doubt) == (False, "smtp-timeout", True)
    assert len(server.messages) == 1  # it did have it


def test_a_refusal_leaves_the_session_able_to_send_the_next_message(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    server.fail_next("RCPT", 451)
    with make_transport().session() as session:
        with pytest.raises(TransportError):
            session.send(message(message_id="<refused@dunwell.example>"))
        session.send(message(message_id="<next@dunwell.example>"))

    assert only(server).message["Message-ID"] == "<next@dunwell.example>"


def test_a_refused_recipient_means_no_blind_copy_goes_out_either(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    server.reject("ann@customer.example")

    error = send_failing(make_transport(bcc_merchant="owner@acme.example"))

    assert (error.permanent, error.code) == (True, "smtp-550")
    assert server.messages == []


def test_a_refused_blind_copy_does_not_stop_the_message(
    server: SmtpServer, make_transport: MakeTransport
) -> None:
    server.reject("owner@acme.example")

    send_one(make_transport(bcc_merchant="owner@acme.example"))

    assert only(server).rcpt_tos == ("ann@customer.example",)


def test_nobody_listening_on_the_port_is_transient(make_transport: MakeTransport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]

    error = send_failing(make_transport(port=dead_port))

    assert (error.permanent, error.code, error.turned_away) == (False, "smtp-connect", True)


def test_a_server_that_never_greets_is_a_transient_timeout(
    make_transport: MakeTransport,
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever answers
        error = send_failing(make_transport(port=silent.getsockname()[1], timeout=0.3))

    assert (error.permanent, error.code) == (False, "smtp-timeout")


class TarpitRelay:
    """A relay that answers every line after ``pause`` seconds, as tarpits do."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.messages = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _say(self, conn: socket.socket, line: bytes) -> None:
        time.sleep(self.pause)
        conn.sendall(line + b"\r\n")

    def _talk(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            try:
                self._say(conn, b"220 tarpit ESMTP")
                in_data = False
                for line in lines:
                    if in_data:
                        if line == b".\r\n":
                            in_data = False
                            self.messages += 1
                            self._say(conn, b"250 queued")
                        continue
                    command = line[:4].upper()
                    in_data = command == b"DATA"
                    self._say(conn, b"354 go on" if in_data else b"250 ok")
            except OSError:
                return  # the client cut the connection


def test_a_relay_slow_on_every_command_cannot_stretch_a_message_past_its_timeout(
    make_transport: MakeTransport,
) -> None:
    # Each answer comes within the timeout, but six of them take 1.8 s: a
    # message allowed that long could outlast its batch's lease and be sent
    # again by another worker. The timeout is the message's time in all.
    relay = TarpitRelay(pause=0.3)
    try:
        started = time.monotonic()
        error = send_failing(make_transport(port=relay.port, timeout=1.0))
        took = time.monotonic() - started
        time.sleep(1.0)  # what a late DATA would have delivered by now
    finally:
        relay.close()

    assert (error.permanent, error.code) == (False, "smtp-timeout")
    assert "within 1 s in all" in error.message
    assert took < 1.5
    assert relay.messages == 0


def test_a_relay_slow_on_every_command_still_takes_mail_within_the_timeout(
    make_transport: MakeTransport,
) -> None:
    relay = TarpitRelay(pause=0.05)
    try:
        with make_transport(port=relay.port, timeout=2.0).session() as session:
            session.send(message(message_id="<one@dunwell.example>"))
            session.send(message(message_id="<two@dunwell.example>"))
    finally:
        relay.close()
    assert relay.messages == 2


@pytest.mark.parametrize(
    "headers",
    [{"Bcc": "spy@elsewhere.example"}, {"Subject": "again"}, {"X-Note": "a\r\nBcc: x@y.example"}],
)
def test_extra_headers_cannot_replace_or_inject_headers(
    server: SmtpServer, make_transport: MakeTransport, headers: dict[str, str]
) -> None:
    error = send_failing(make_transport(), message(headers=headers))

    assert (error.permanent, error.code) == (True, "invalid-message")
    assert server.messages == []


def test_a_message_without_any_sender_is_permanent(make_transport: MakeTransport) -> None:
    error = send_failing(make_transport(), replace(message(), from_addr=""))

    assert (error.permanent, error.code) == (True, "invalid-message")
