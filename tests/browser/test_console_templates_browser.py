"""The template editor in Chromium: typing into the SMS body updates the live preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from playwright.sync_api import Browser, expect

from dunwell.bootstrap import App
from dunwell.messaging.keywords import with_opt_out_line
from dunwell.messaging.segments import count_segments
from dunwell.services.sites import create_site
from tests.browser.conftest import Server
from tests.browser.console import add_staff, dashboard_page, screenshot, sign_in

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]
EDITOR = "/dashboard/templates/payment_declined?channel=sms&locale=en"


def shop_with_owner(app: App) -> str:
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="corner-shop", name="Corner Shop")
    return add_staff(app, site, "owner")


def test_typing_an_sms_body_updates_the_segment_count(serve: Serve[str], browser: Browser) -> None:
    server, owner = serve(shop_with_owner)
    page = dashboard_page(browser)
    sign_in(page, server.base, owner, EDITOR)
    expect(page.get_by_role("heading", level=1)).to_have_text("payment_declined")
    segments = page.locator("#preview-segments dd")
    encoding = page.locator("#preview-encoding dd")
    # The bundled English text is short and plain: one GSM-7 segment.
    expect(segments).to_have_text("1")
    expect(encoding).to_have_text("GSM-7")

    body = page.get_by_label("SMS body")
    # Sixty letters and an emoji: the emoji forces UCS-2, 70 units a segment,
    # and with the opt-out line appended the text needs two.
    emoji_text = "a" * 60 + " 😀"
    body.fill(emoji_text)
    expect(encoding).to_have_text("UCS-2")
    expect(segments).to_have_text("2")
    assert count_segments(with_opt_out_line(emoji_text, "Reply STOP to opt out")).segments == 2
    expect(page.locator(".preview-warnings")).to_contain_text("😀 (U+1F600) forces UCS-2")
    screenshot(page, "template-editor-sms-emoji")

    # A long plain body: the count is the one the segment counter gives the final text.
    long_text = "Your card was declined, please update it so your plan continues. " * 4
    body.fill(long_text)
    final = with_opt_out_line(long_text.strip(), "Reply STOP to opt out")
    expected = count_segments(final)
    expect(encoding).to_have_text("GSM-7")
    expect(segments).to_have_text(str(expected.segments))
    expect(page.locator("#preview-text")).to_have_text(final)
    screenshot(page, "template-editor-sms-long")
    page.context.close()
