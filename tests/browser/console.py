"""Driving the merchant dashboard in Chromium: sign in, and keep a screenshot of each step.

Screenshots go to ``test-output/screenshots/`` (or ``$DUNWELL_TEST_OUTPUT``),
one PNG per named step, so a failed CI run can be looked at afterwards.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.integration.console_helpers import PASSWORD, add_staff

__all__ = ["PASSWORD", "add_staff", "dashboard_page", "screenshot", "sign_in"]

OUTPUT = Path(os.environ.get("DUNWELL_TEST_OUTPUT", "test-output")) / "screenshots"


def dashboard_page(browser: Browser) -> Page:
    """A page with JavaScript on, as merchants use the dashboard."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page: Page, base: str, email: str, next_path: str = "/dashboard") -> None:
    page.goto(f"{base}/dashboard/sign-in?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``<name>.png`` under the run's output; returns the path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
