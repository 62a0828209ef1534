"""The Twilio SMS transport, through the official SDK, against a local fake of
Twilio's Messages API."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from dunwell.channels.base import SmsMessage, TransportError
from dunwell.channels.twilio_sms import (
    ApiBaseHttpClient,
    TwilioConfig,
    TwilioSmsTransport,
    classify_twilio_error,
)
from dunwell.clock import FixedClock
from tests.integration.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    MESSAGING_SERVICE_SID,
    FakeTwilioServer,
)

CUSTOMER = "+14155550100"
CREATED_AT = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)

MakeTransport = Callable[..., TwilioSmsTransport]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(CREATED_AT)


@pytest.fixture
def server(clock: FixedClock) -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer(now=clock.now) as server:
        yield server


@pytest.fixture
def make_transport(server: FakeTwilioServer) -> Iterator[MakeTransport]:
    """Transports for the fake, settings overridable; all closed afterwards."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TwilioSmsTransport:
            settings: dict[str, Any] = {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from_number": FROM_NUMBER,
                "api_base": server.url,
                "timeout": 5.0,
            }
            config = TwilioConfig(**{**settings, **overrides})
            return stack.enter_context(TwilioSmsTransport(config))

        yield make


def send_failing(transport: TwilioSmsTransport, to: str = CUSTOMER) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(SmsMessage(to, "Your card was declined."))
    return caught.value


def test_a_sent_message_comes_back_with_twilios_sid_and_queued(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    result = make_transport().send(SmsMessage(CUSTOMER, "Your card was declined."))

    [accepted] = server.messages
    assert result.provider_id == accepted.sid
    assert result.provider_id is not None and result.provider_id.startswith("SM")
    assert len(result.provider_id) == 34
    assert result.status == "queued"
    assert (accepted.to, accepted.from_, accepted.body) == (
        CUSTOMER,
        FROM_NUMBER,
        "Your card was declined.",
    )


def test_the_request_carries_to_from_body_and_status_callback(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    callback = "https://dunwell.example/twilio/acme/status"

    make_transport().send(SmsMessage(CUSTOMER, "Réglez votre facture 😊", callback))

    [request] = server.fake.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": CUSTOMER,
        "From": FROM_NUMBER,
        "Body": "Réglez votre facture 😊",
        "StatusCallback": callback,
    }


def test_a_messaging_service_sends_without_a_from_number_and_is_accepted(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(from_number=None, messaging_service_sid=MESSAGING_SERVICE_SID)

    result = transport.send(SmsMessage(CUSTOMER, "Your card was declined."))

    assert result.status == "accepted"
    [request] = server.fake.requests
    assert request.form["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert "From" not in request.form


def test_a_config_needs_exactly_one_kind_of_sender() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with pytest.raises(ValueError, match="exactly one"):
        TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM_NUMBER,
            messaging_service_sid=MESSAGING_SERVICE_SID,
        )


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", "21211"),  # invalid number
        ("+15005550002", "21612"),  # no route
        ("+15005550003", "21408"),  # region not enabled
        ("+15005550004", "21610"),  # replied STOP
        ("+15005550009", "21614"),  # not a mobile number
        ("not-a-number", "21211"),
    ],
)
def test_numbers_twilio_refuses_are_permanent_errors(
    server: FakeTwilioServer, make_transport: MakeTransport, to: str, code: str
) -> None:
    error = send_failing(make_transport(), to)

    assert (error.permanent, error.code) == (True, code)
    assert server.messages == []


def test_a_rule_for_a_number_fails_every_message_to_it(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    server.fail_for(CUSTOMER, status=400, code=21610)
    transport = make_transport()

    codes = [send_failing(transport).code for _ in range(2)]

    assert codes == ["21610", "21610"]


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(429, 20429, "20429"), (503, None, "http-503"), (500, 20500, "20500")],
)
def test_rate_limits_and_outages_are_transient_and_the_next_try_goes_through(
    server: FakeTwilioServer,
    make_transport: MakeTransport,
    status: int,
    code: int | None,
    expected: str,
) -> None:
    server.fail_next(1, status=status, code=code)
    transport = make_transport()

    error = send_failing(transport)
    result = transport.send(SmsMessage(CUSTOMER, "Your card was declined."))

    assert (error.permanent, error.code) == (False, expected)
    # Only "too many requests" says another connection might send it now.
    assert error.turned_away is (status == 429)
    assert not error.in_doubt  # Twilio answered: the message was not taken
    assert result.status == "queued"
    assert len(server.messages) == 1


def test_a_wrong_auth_token_is_permanent(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    error = send_failing(make_transport(auth_token="0" * 32))

    assert (error.permanent, error.code) == (True, "20003")
    assert server.messages == []


def test_an_api_nobody_answers_on_is_transient(make_transport: MakeTransport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"

    error = send_failing(make_transport(api_base=dead))

    assert (error.permanent, error.code) == (False, "twilio-unreachable")
    assert (error.turned_away, error.in_doubt) == (True, False)  # nothing was sent


def test_an_api_that_never_answers_times_out_as_transient(make_transport: MakeTransport) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepted by the kernel, never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        error = send_failing(make_transport(api_base=url, timeout=0.3))

    assert (error.permanent, error.code) == (False, "twilio-unreachable")
    assert "Timeout" in error.message
    # The request went out: Twilio may have taken the text.
    assert (error.turned_away, error.in_doubt) == (False, True)


def test_find_sent_finds_the_message_an_earlier_attempt_sent(
    make_transport: MakeTransport,
) -> None:
    transport = make_transport()
    message = SmsMessage(CUSTOMER, "Your card was declined.")
    sent = transport.send(message)
    transport.send(SmsMessage(CUSTOMER, "Another text"))

    found = transport.find_sent(message, CREATED_AT - timedelta(minutes=5))

    assert found is not None
    assert (found.provider_id, found.status) == (sent.provider_id, "queued")


def test_find_sent_finds_nothing_for_a_message_never_sent(
    make_transport: MakeTransport,
) -> None:
    transport = make_transport()
    transport.send(SmsMessage(CUSTOMER, "Your card was declined."))

    since = CREATED_AT - timedelta(minutes=5)
    assert transport.find_sent(SmsMessage(CUSTOMER, "A different text"), since) is None
    assert transport.find_sent(SmsMessage("+14155550199", "Your card was declined."), since) is None


def test_find_sent_ignores_messages_created_before_since_to_the_second(
    make_transport: MakeTransport,
) -> None:
    transport = make_transport()
    message = SmsMessage(CUSTOMER, "Your card was declined.")
    transport.send(message)

    # Twilio dates to the second: later in the same second still matches.
    assert transport.find_sent(message, CREATED_AT + timedelta(milliseconds=400)) is not None
    assert transport.find_sent(message, CREATED_AT + timedelta(seconds=1)) is None


def test_find_sent_ignores_the_same_text_from_another_sender(
    make_transport: MakeTransport,
) -> None:
    message = SmsMessage(CUSTOMER, "Your card was declined.")
    make_transport(from_number="+15005550007").send(message)

    assert make_transport().find_sent(message, CREATED_AT - timedelta(minutes=1)) is None


def test_find_sent_reports_the_status_twilio_has_now(
    server: FakeTwilioServer, make_transport: MakeTransport, receiver: Receiver
) -> None:
    transport = make_transport()
    message = SmsMessage(CUSTOMER, "Your card was declined.", receiver.url)
    sent = transport.send(message)
    assert sent.provider_id is not None
    server.post_status(sent.provider_id, "delivered")

    found = transport.find_sent(message, CREATED_AT)

    assert found is not None and found.status == "delivered"


def test_find_sent_with_bad_credentials_is_a_permanent_error(
    make_transport: MakeTransport,
) -> None:
    transport = make_transport(auth_token="0" * 32)

    with pytest.raises(TransportError) as caught:
        transport.find_sent(SmsMessage(CUSTOMER, "x"), CREATED_AT)

    assert (caught.value.permanent, caught.value.code) == (True, "20003")


# -- status callbacks -------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    path: str
    signature: str | None
    form: dict[str, str]


class Receiver:
    """A tiny HTTP server standing in for Dunwell's status callback route."""

    def __init__(self) -> None:
        self.callbacks: list[Callback] = []
        received = self.callbacks

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                signature = self.headers.get("X-Twilio-Signature")
                received.append(Callback(self.path, signature, form))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}/twilio/acme/status"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def test_a_status_callback_arrives_signed_so_the_sdk_validator_accepts_it(
    server: FakeTwilioServer, make_transport: MakeTransport, receiver: Receiver
) -> None:
    sent = make_transport().send(SmsMessage(CUSTOMER, "Your card was declined.", receiver.url))
    assert sent.provider_id is not None

    answered = server.post_status(sent.provider_id, "delivered")

    [callback] = receiver.callbacks
    assert answered == 204
    assert callback.path == "/twilio/acme/status"
    assert callback.signature is not None
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(receiver.url, callback.form, callback.signature)
    assert not RequestValidator("0" * 32).validate(receiver.url, callback.form, callback.signature)
    assert callback.form["MessageSid"] == sent.provider_id
    assert callback.form["MessageStatus"] == "delivered"
    assert (callback.form["To"], callback.form["From"]) == (CUSTOMER, FROM_NUMBER)
    assert callback.form["AccountSid"] == ACCOUNT_SID
    assert "ErrorCode" not in callback.form


def test_an_undelivered_callback_carries_an_error_code_classified_permanent(
    server: FakeTwilioServer, make_transport: MakeTransport, receiver: Receiver
) -> None:
    sent = make_transport().send(SmsMessage(CUSTOMER, "Your card was declined.", receiver.url))
    assert sent.provider_id is not None
    server.post_status(sent.provider_id, "sent")
    server.post_status(sent.provider_id, "undelivered", error_code=30003)

    statuses = [c.form["MessageStatus"] for c in receiver.callbacks]
    last = receiver.callbacks[-1].form

    assert statuses == ["sent", "undelivered"]
    assert last["ErrorCode"] == "30003"
    assert classify_twilio_error(None, int(last["ErrorCode"])) is True


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (400, 21211, True),
        (400, 21610, True),
        (400, 21614, True),
        (400, 21408, True),
        (400, 21612, True),
        (400, None, True),  # any other 4xx
        (401, 20003, True),  # credentials: a person must fix them
        (403, None, True),
        (400, 21611, False),  # the sender's queue is full: later
        (429, 20429, False),
        (500, None, False),
        (503, 20503, False),
        (None, None, False),  # no answer at all
        (None, 30001, False),  # queue overflow
        (None, 30002, True),  # account suspended
        (None, 30003, True),  # unreachable handset
        (None, 30005, True),  # unknown handset
        (None, 30006, True),  # landline
        (None, 30007, True),  # filtered as spam
        (None, 30008, False),  # unknown error
        (None, 30017, False),  # carrier congestion
        (None, 39999, False),  # an unknown delivery code
    ],
)
def test_classify_twilio_error_decides_what_is_permanent(
    status: int | None, code: int | None, permanent: bool
) -> None:
    assert classify_twilio_error(status, code) is permanent


def test_the_fake_pages_like_twilio_so_the_sdk_reads_every_page(
    server: FakeTwilioServer, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    sids = [transport.send(SmsMessage(CUSTOMER, f"text {n}")).provider_id for n in range(5)]
    http = ApiBaseHttpClient(server.url, timeout=5.0)
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    try:
        listed = client.messages.list(to=CUSTOMER, page_size=2)
    finally:
        http.session.close()

    assert [m.sid for m in listed] == list(reversed(sids))  # newest first
    pages = [r.query.get("Page") for r in server.fake.requests if r.method == "GET"]
    assert pages == [None, "1", "2"]
