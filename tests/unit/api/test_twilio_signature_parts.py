"""The webhook's quicker signature and URL agree with the SDK's and Starlette's, always."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from dunwell.api.routes_twilio import _signed_path, _twiml
from dunwell.api.twilio_sites import TwilioSite

TOKEN = "0123456789abcdef0123456789abcdef"

# Form fields as Twilio posts them: names and values of any text, one value per name.
forms = st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=8)
urls = st.builds(
    lambda slug, query: f"https://dunwell.example/twilio/{slug}/sms" + (query and "?" + query),
    st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=20),
)


@given(urls, forms)
def test_the_signature_is_the_sdks(url: str, params: dict[str, str]) -> None:
    site = TwilioSite.with_token(1, TOKEN)
    assert site.signature(url, params) == RequestValidator(TOKEN).compute_signature(url, params)


@given(urls, forms)
def test_a_request_signed_by_the_sdk_is_accepted_and_a_changed_one_is_not(
    url: str, params: dict[str, str]
) -> None:
    site = TwilioSite.with_token(1, TOKEN)
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    assert site.signed(url, params, signature)
    assert not site.signed(url, {**params, "Body": params.get("Body", "") + "!"}, signature)
    other = TwilioSite.with_token(1, "f" * 32)
    assert not other.signed(url, params, signature)


# Paths and queries as an ASGI server hands them over, odd characters included.
paths = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30).map(lambda p: "/" + p)
queries = st.binary(max_size=30) | st.text(max_size=30).map(lambda q: q.encode())


@settings(max_examples=1000)
@given(paths, queries)
def test_the_signed_path_is_what_starlettes_url_gives(path: str, query: bytes) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "server": ("127.0.0.1", 8000),
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"dunwell.example")],
    }
    request = Request(scope)
    try:
        url = request.url
    except UnicodeDecodeError:
        # Starlette cannot read such a query at all; ours reads it with
        # replacement characters (no signature of Twilio's matches them)
        # instead of failing the request.
        query_text = query.decode("utf-8", "replace").partition("#")[0]
        assert _signed_path(request).endswith(query_text.translate({9: None, 10: None, 13: None}))
        return
    expected = url.path + (f"?{url.query}" if url.query else "")
    assert _signed_path(request) == expected


def test_a_reply_is_escaped_twiml_and_built_once() -> None:
    _twiml.cache_clear()
    first = _twiml("Reply STOP <to> stop & HELP for help")
    assert "<Message>Reply STOP &lt;to&gt; stop &amp; HELP for help</Message>" in first
    assert _twiml("Reply STOP <to> stop & HELP for help") is first
