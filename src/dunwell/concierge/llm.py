"""An optional language model for the texts the rules cannot read.

Any OpenAI-compatible chat-completions endpoint works: ``POST
{base_url}/chat/completions`` with ``Authorization: Bearer <key>``, the
model, the messages of :mod:`dunwell.concierge.prompt`, temperature 0 and
JSON output; the answer is read from ``choices[0].message.content``.

:func:`understand_text` asks the rules first and the model only when the
rules are not confident. The model's answer is used only when it passes
:mod:`dunwell.concierge.validation`; an HTTP error, a timeout, or an
answer that is not valid falls back to the rules' answer and logs a
warning that never includes the customer's text. Carrier keywords (STOP,
START, HELP...) are always the rules' to decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from dunwell.concierge import prompt
from dunwell.concierge.intents import Intent
from dunwell.concierge.understanding import CARRIER_INTENTS, understand
from dunwell.concierge.validation import InvalidAnswer, parse_answer
from dunwell.concierge.wire import ParseRequest, Understanding
from dunwell.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LlmConfig:
    """Where the model is and how long to wait for it (texts are answered live)."""

    base_url: str
    model: str
    api_key: str
    timeout_seconds: float = 5.0


class LlmUnderstander:
    """Asks the configured model for one text's understanding; None when it cannot."""

    def __init__(self, config: LlmConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(
            transport=transport, timeout=config.timeout_seconds, headers=headers
        )

    def understand(self, request: ParseRequest) -> Understanding | None:
        """The model's valid understanding of ``request`` (source "llm"), or None."""
        try:
            content = self._ask(request)
            intent, slots = parse_answer(content, request)
        except httpx.HTTPError as error:
            logger.warning("LLM not reached (%s); using the rules' answer", type(error).__name__)
            return None
        except InvalidAnswer as error:
            logger.warning("LLM answer rejected (%s); using the rules' answer", error)
            return None
        return Understanding(intent, slots, confident=True, source="llm")

    def close(self) -> None:
        self._client.close()

    def _ask(self, request: ParseRequest) -> str:
        body = {
            "model": self.config.model,
            "messages": prompt.messages(request),
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        response = self._client.post(self._url, json=body)
        response.raise_for_status()
        return _content(response)


def _content(response: httpx.Response) -> str:
    """``choices[0].message.content`` of a chat-completions response."""
    try:
        data: Any = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidAnswer("the response is not a chat completion") from None
    if not isinstance(content, str):
        raise InvalidAnswer("the completion has no text content")
    return content


def understand_text(request: ParseRequest, llm: LlmUnderstander | None = None) -> Understanding:
    """The rules' understanding, or the model's when the rules are unsure and it answers validly.

    A model that says ``unknown`` does not replace a reading the rules made.
    """
    rules = understand(request)
    if rules.confident or llm is None or rules.intent in CARRIER_INTENTS:
        return rules
    answer = llm.understand(request)
    if answer is None or answer.intent is Intent.UNKNOWN:
        return rules
    return answer


def llm_from_settings(settings: Settings) -> LlmUnderstander | None:
    """The model the settings configure, or None unless both base URL and model are set."""
    if not settings.llm_base_url or not settings.llm_model:
        return None
    config = LlmConfig(settings.llm_base_url, settings.llm_model, settings.llm_api_key)
    return LlmUnderstander(config)
