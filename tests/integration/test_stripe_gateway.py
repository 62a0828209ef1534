"""The Stripe gateway, through the real SDK, against a local fake of Stripe's API."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from dunwell.domain.declines import DeclineClass, classify_decline
from dunwell.domain.states import AttemptStatus
from dunwell.gateways.base import ChargeRequest, ChargeResponse
from dunwell.gateways.stripe import StripeGateway
from tests.integration.fake_stripe import (
    API_KEY,
    RATE_LIMITED,
    REQUIRES_ACTION,
    SERVER_ERROR,
    FakeStripeServer,
)


@pytest.fixture
def server() -> Iterator[FakeStripeServer]:
    server = FakeStripeServer().start()
    yield server
    server.stop()


@pytest.fixture
def gateway(server: FakeStripeServer) -> Iterator[StripeGateway]:
    with StripeGateway(
        API_KEY, api_base=server.url, max_network_retries=0, rate_limit_pauses=QUICK_PAUSES
    ) as gateway:
        yield gateway


#: Pauses after a 429 short enough for tests; their count is what matters.
QUICK_PAUSES = (0.01, 0.01)


def request(
    token: str,
    key: str = "inv_1:attempt_1",
    amount_minor: int = 1999,
    currency: str = "USD",
    gateway_customer: str | None = "cus_Nv0001",
) -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=key,
        token=token,
        amount_minor=amount_minor,
        currency=currency,
        gateway_customer=gateway_customer,
        description="Invoice inv_1",
    )


def charge(gateway: StripeGateway, charge_request: ChargeRequest) -> ChargeResponse:
    [response] = gateway.charge_many([charge_request])
    return response


def test_a_successful_charge_succeeds_with_the_payment_intent_as_reference(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    response = charge(gateway, request("pm_card_visa"))

    assert response.status is AttemptStatus.SUCCEEDED
    assert response.decline_code is None
    assert response.reference is not None
    assert response.reference.startswith("pi_")
    assert server.fake.executed == ["inv_1:attempt_1"]


def test_the_charge_is_a_confirmed_off_session_payment_intent_for_the_request(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    charge(gateway, request("pm_card_visa", key="inv_7:attempt_2", amount_minor=4250))

    [sent] = server.fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == "inv_7:attempt_2"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.params == {
        "amount": "4250",
        "currency": "usd",
        "customer": "cus_Nv0001",
        "payment_method": "pm_card_visa",
        "off_session": "true",
        "confirm": "true",
        "description": "Invoice inv_1",
    }


def test_a_request_without_a_stripe_customer_sends_no_customer(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    response = charge(gateway, request("pm_card_visa", gateway_customer=None))

    assert response.status is AttemptStatus.SUCCEEDED
    assert "customer" not in server.fake.requests[0].params


@pytest.mark.parametrize(
    ("token", "code", "decline_class"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", DeclineClass.SOFT),
        ("pm_card_chargeDeclinedLostCard", "lost_card", DeclineClass.HARD),
        ("pm_card_chargeDeclinedStolenCard", "stolen_card", DeclineClass.HARD),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", DeclineClass.HARD),
        ("pm_card_chargeDeclined", "generic_decline", DeclineClass.SOFT),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", DeclineClass.SOFT),
        ("pm_card_authenticationRequired", "authentication_required", DeclineClass.HARD),
    ],
)
def test_a_card_error_is_a_decline_with_the_issuers_code_and_its_class(
    gateway: StripeGateway, token: str, code: str, decline_class: DeclineClass
) -> None:
    response = charge(gateway, request(token))

    assert response.status is AttemptStatus.DECLINED
    assert response.decline_code == code
    assert classify_decline(response.decline_code) is decline_class
    # The failed PaymentIntent, so support can find the attempt in Stripe.
    assert response.reference is not None
    assert response.reference.startswith("pi_")
    assert "stripe CardError (402)" in response.message


def test_a_payment_intent_that_requires_action_is_an_authentication_decline(
    gateway: StripeGateway,
) -> None:
    response = charge(gateway, request(REQUIRES_ACTION))

    assert response.status is AttemptStatus.DECLINED
    assert response.decline_code == "authentication_required"
    assert classify_decline(response.decline_code) is DeclineClass.HARD


@pytest.mark.parametrize(
    ("token", "customer"),
    [("pm_does_not_exist", "cus_Nv0001"), ("pm_card_visa", "not_a_customer")],
)
def test_a_missing_payment_method_or_customer_is_a_hard_invalid_account_decline(
    gateway: StripeGateway, token: str, customer: str
) -> None:
    response = charge(gateway, request(token, gateway_customer=customer))

    assert response.status is AttemptStatus.DECLINED
    assert response.decline_code == "invalid_account"
    assert classify_decline(response.decline_code) is DeclineClass.HARD


def test_a_rate_limit_that_outlasts_the_pauses_is_an_error_to_retry_with_the_same_key(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    first = charge(gateway, request(RATE_LIMITED))
    second = charge(gateway, request(RATE_LIMITED))

    assert first.status is second.status is AttemptStatus.ERROR
    assert first.decline_code == "rate_limit"
    # Asked once and again after each pause; Stripe limits before its
    # idempotency layer, so each retry reaches it anew.
    asked = 2 * (1 + len(QUICK_PAUSES))
    assert [r.replayed for r in server.fake.requests] == [False] * asked
    assert server.fake.executed == []


def test_a_rate_limited_charge_is_asked_again_after_a_pause_and_charged_once(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    server.fake.rate_limit_next = 1

    response = charge(gateway, request("pm_card_visa", key="inv_9:attempt_1"))

    assert response.status is AttemptStatus.SUCCEEDED
    assert len(server.fake.requests_with_key("inv_9:attempt_1")) == 2
    assert server.fake.executed == ["inv_9:attempt_1"]


def test_a_rate_limited_charge_whose_pause_ends_past_the_deadline_is_not_sent(
    server: FakeStripeServer,
) -> None:
    server.fake.rate_limit_next = 1
    with StripeGateway(API_KEY, api_base=server.url, rate_limit_pauses=(0.3,)) as gateway:
        [answer] = gateway.charge_many(
            [request("pm_card_visa", key="late")], until=time.monotonic() + 0.1
        )

    # Stripe refused it before charging: the caller asks again next time.
    assert answer is None
    assert len(server.fake.requests_with_key("late")) == 1
    assert server.fake.executed == []


def test_a_batch_goes_out_in_lanes_side_by_side_and_is_answered_in_order(
    server: FakeStripeServer,
) -> None:
    server.fake.latency = 0.05
    tokens = ["pm_card_visa", "pm_card_chargeDeclinedInsufficientFunds", "pm_card_mastercard"] * 4
    requests = [request(token, key=f"lane-{n}") for n, token in enumerate(tokens)]
    with StripeGateway(API_KEY, api_base=server.url, concurrency=4, max_per_second=1000) as gateway:
        answers = gateway.charge_many(requests)

    assert [a.status if a else None for a in answers] == [
        AttemptStatus.SUCCEEDED,
        AttemptStatus.DECLINED,
        AttemptStatus.SUCCEEDED,
    ] * 4
    assert 1 < server.fake.most_in_flight <= 4
    assert sorted(server.fake.executed, key=str) == sorted(r.idempotency_key for r in requests)


def test_requests_not_started_by_the_deadline_are_not_sent(server: FakeStripeServer) -> None:
    server.fake.latency = 0.1
    requests = [request("pm_card_visa", key=f"due-{n}") for n in range(10)]
    with StripeGateway(API_KEY, api_base=server.url, concurrency=1) as gateway:
        answers = gateway.charge_many(requests, until=time.monotonic() + 0.25)
        passed = gateway.charge_many([request("pm_card_visa", key="after")], until=0.0)

    assert answers[0] is not None  # started at once, well before the deadline
    assert answers[-1] is None  # ten at 0.1 s each cannot all start within 0.25 s
    sent = {r.idempotency_key for r, a in zip(requests, answers, strict=True) if a is not None}
    assert set(server.fake.executed) == sent
    assert passed == [None]
    assert server.fake.requests_with_key("after") == []


def test_lanes_together_start_no_more_requests_a_second_than_the_pace(
    server: FakeStripeServer,
) -> None:
    requests = [request("pm_card_visa", key=f"paced-{n}") for n in range(10)]
    with StripeGateway(API_KEY, api_base=server.url, concurrency=4, max_per_second=20) as gateway:
        answers = gateway.charge_many(requests)

    assert all(a is not None and a.status is AttemptStatus.SUCCEEDED for a in answers)
    arrivals = sorted(r.arrived_at for r in server.fake.requests)
    # Ten starts 1/20 s apart span 0.45 s (less a lane's connection set-up);
    # four lanes unpaced would send them all within a few milliseconds.
    assert arrivals[-1] - arrivals[0] > 0.35


def test_a_request_whose_turn_comes_after_the_deadline_is_not_sent(
    server: FakeStripeServer,
) -> None:
    requests = [request("pm_card_visa", key=f"turn-{n}") for n in range(4)]
    with StripeGateway(API_KEY, api_base=server.url, concurrency=4, max_per_second=2) as gateway:
        answers = gateway.charge_many(requests, until=time.monotonic() + 0.75)

    # Turns at 0 and 0.5 s fall before the deadline, those at 1 and 1.5 s after.
    assert [a is not None for a in answers] == [True, True, False, False]
    assert sorted(server.fake.executed, key=str) == ["turn-0", "turn-1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1, not 0"),
        ({"max_per_second": 0}, "max_per_second must be above 0, not 0"),
    ],
)
def test_settings_that_cannot_work_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StripeGateway(API_KEY, **options)  # type: ignore[arg-type]


def test_a_server_error_is_an_error_and_the_sdk_does_not_retry_it_itself(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    response = charge(gateway, request(SERVER_ERROR))

    assert response.status is AttemptStatus.ERROR
    assert response.decline_code == "api_error"
    assert "(500)" in response.message
    assert len(server.fake.requests) == 1


def test_an_unreachable_stripe_is_an_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{port}") as gateway:
        response = charge(gateway, request("pm_card_visa"))

    assert response.status is AttemptStatus.ERROR
    assert response.decline_code == "gateway_timeout"
    assert "APIConnectionError" in response.message


def test_a_wrong_api_key_is_an_error_not_a_decline(server: FakeStripeServer) -> None:
    with StripeGateway("sk_test_wrong", api_base=server.url) as gateway:
        response = charge(gateway, request("pm_card_visa"))

    assert response.status is AttemptStatus.ERROR
    assert response.decline_code == "authentication_error"
    assert server.fake.executed == []


@pytest.mark.parametrize("token", ["pm_card_visa", "pm_card_chargeDeclinedInsufficientFunds"])
def test_the_same_idempotency_key_twice_charges_once_and_answers_the_same(
    gateway: StripeGateway, server: FakeStripeServer, token: str
) -> None:
    first = charge(gateway, request(token, key="inv_9:attempt_1"))
    second = charge(gateway, request(token, key="inv_9:attempt_1"))

    assert second == first
    assert server.fake.executed == ["inv_9:attempt_1"]
    sent = server.fake.requests_with_key("inv_9:attempt_1")
    assert [r.replayed for r in sent] == [False, True]


def test_a_server_error_is_replayed_for_its_key_like_stripe_does(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    first = charge(gateway, request(SERVER_ERROR))
    second = charge(gateway, request(SERVER_ERROR))

    assert first.status is second.status is AttemptStatus.ERROR
    assert [r.replayed for r in server.fake.requests] == [False, True]


def test_a_key_reused_with_other_parameters_is_an_error_and_charges_nothing_more(
    gateway: StripeGateway, server: FakeStripeServer
) -> None:
    charge(gateway, request("pm_card_visa", key="inv_3:attempt_1", amount_minor=1000))
    response = charge(gateway, request("pm_card_visa", key="inv_3:attempt_1", amount_minor=2000))

    assert response.status is AttemptStatus.ERROR
    assert response.decline_code == "idempotency_error"
    assert server.fake.executed == ["inv_3:attempt_1"]


def test_a_batch_is_answered_in_request_order(gateway: StripeGateway) -> None:
    responses = gateway.charge_many(
        [
            request("pm_card_chargeDeclinedLostCard", key="a"),
            request("pm_card_visa", key="b"),
            request(SERVER_ERROR, key="c"),
            request("pm_card_chargeDeclinedInsufficientFunds", key="d"),
        ]
    )

    assert [(r.status, r.decline_code) for r in responses] == [
        (AttemptStatus.DECLINED, "lost_card"),
        (AttemptStatus.SUCCEEDED, None),
        (AttemptStatus.ERROR, "api_error"),
        (AttemptStatus.DECLINED, "insufficient_funds"),
    ]


def test_an_empty_batch_makes_no_request(gateway: StripeGateway, server: FakeStripeServer) -> None:
    assert gateway.charge_many([]) == []
    assert server.fake.requests == []
