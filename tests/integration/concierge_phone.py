"""A customer's phone for concierge tests: text in through a real way in, read what comes back.

Two ways in, as in production:

* :class:`TwilioPhone` posts Twilio's inbound webhook, signed with the SDK's
  ``RequestValidator``, and reads the answers the real Twilio SDK delivered
  to the local server that speaks Twilio's API;
* :class:`SandboxPhone` uses ``POST /v1/sandbox/phone/reply`` and reads the
  sandbox phone.

Either way the worker runs between the text and the reading, so each
answer went through the outbox and every SMS compliance check.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilioServer


class Phone(Protocol):
    number: str

    def text(self, body: str) -> list[str]:
        """Send ``body`` as the customer; return the texts they received after it."""
        ...


@dataclass
class TwilioPhone:
    shop: Shop
    client: TestClient
    server: FakeTwilioServer
    public_url: str
    number: str
    seen: int = 0

    def text(self, body: str) -> list[str]:
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": ACCOUNT_SID,
            "From": self.number,
            "To": FROM_NUMBER,
            "Body": body,
        }
        path = f"/twilio/{self.slug}/sms"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(self.public_url + path, params)
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
        # The server's own concierge thread may be answering it: let it finish,
        # then the worker delivers (and answers whatever the thread left).
        assert self.client.app.state.twilio_inbound.answerer.wait_idle(30)
        self.shop.run()
        mine = [m.body for m in self.server.messages if m.to == self.number]
        new, self.seen = mine[self.seen :], len(mine)
        return new

    @property
    def slug(self) -> str:
        return str(self.shop.one(tables.sites, id=self.shop.site_id).slug)


@dataclass
class SandboxPhone:
    shop: Shop
    client: TestClient
    headers: dict[str, str]
    number: str
    seen_ids: set[int] = field(default_factory=set)

    def text(self, body: str) -> list[str]:
        response = self.client.post(
            "/v1/sandbox/phone/reply",
            json={"from": self.number, "body": body},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        self.shop.run()
        rows = self.shop.all(tables.sandbox_messages, direction="outbound", to_addr=self.number)
        new = [r for r in rows if r.id not in self.seen_ids]
        self.seen_ids |= {r.id for r in rows}
        return [r.body_text for r in new]
