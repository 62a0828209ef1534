"""Browser tests: the real server in a subprocess, driven by Debian's Chromium.

Playwright only drives the browser found at ``/usr/bin/chromium``; it never
downloads one. Without that browser these tests skip, unless
``DUNWELL_REQUIRE_CHROMIUM=1`` (set by CI), in which case they fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import TYPE_CHECKING, TypeVar

import httpx
import pytest

from dunwell.bootstrap import App, bootstrap
from dunwell.clock import SystemClock
from dunwell.settings import Settings
from tests.e2e.conftest import Cli, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_CHROMIUM = os.environ.get("DUNWELL_REQUIRE_CHROMIUM") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-secret-key"
T = TypeVar("T")


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if REQUIRE_CHROMIUM:
        pytest.fail(f"DUNWELL_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The system browser only: Playwright's own browsers are never installed.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page with JavaScript off: the hosted pages must work without it."""
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@dataclass
class Server:
    base: str
    database_url: str

    def app(self) -> App:
        """An in-process app on the server's database, with the server's key and address."""
        settings = Settings(database_url=self.database_url, secret_key=SECRET, public_url=self.base)
        return bootstrap(settings, clock=SystemClock())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Callable[[App], T]], tuple[Server, T]]]:
    """Seed a fresh database in-process with ``seed(app)``, then start ``dunwell serve`` on it."""
    processes: list[Popen[bytes]] = []

    def start(seed: Callable[[App], T]) -> tuple[Server, T]:
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'hosted.db'}")
        cli = Cli(server.database_url, secret_key=SECRET, public_url=server.base)
        cli("migrate")
        app = server.app()
        try:
            seeded = seed(app)
        finally:
            app.close()
        log = tmp_path / "server.log"
        process = cli.popen("--port", str(port), "serve", log=log)
        processes.append(process)
        _wait_until_up(server.base, process, log)
        return server, seeded

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(base: str, process: Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
