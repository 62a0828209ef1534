from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Cli, free_port


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[tuple[str, str]]:
    key = re.search(r"(dwk_\S+)", cli("demo-site").stdout)
    assert key is not None
    port = free_port()
    log = tmp_path / "server.log"
    process = cli.popen(
        "--port", str(port), "--poll-seconds", "0.2", "serve", "--with-worker", log=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield base, key.group(1)
    process.terminate()
    process.wait(timeout=30)


def test_the_served_api_advances_the_clock_and_the_worker_collects(
    server: tuple[str, str],
) -> None:
    base, key = server
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{base}/v1/invoices", headers=auth).json()["data"] == []
    moved = httpx.post(f"{base}/v1/clock/advance", json={"by": "2h"}, headers=auth)
    assert moved.status_code == 200
    deadline = time.monotonic() + 20
    while True:
        invoices = httpx.get(f"{base}/v1/invoices", headers=auth).json()["data"]
        if len(invoices) == 5 and all(i["status"] != "open" for i in invoices):
            break
        assert time.monotonic() < deadline, invoices
        time.sleep(0.2)
    assert sorted(i["status"] for i in invoices).count("paid") == 1


def test_the_served_api_rejects_a_request_without_a_key(server: tuple[str, str]) -> None:
    base, _ = server
    response = httpx.get(f"{base}/v1/invoices")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Dunwell"
