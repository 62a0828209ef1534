"""What an operator sees when the server's configuration goes wrong: one site's
unreadable provider secret, a stage that fails, a bad key or database URL."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import text

from dunwell import worker as worker_module
from dunwell.bootstrap import App
from dunwell.cli import main
from dunwell.services.channel_config import SECRET_UNREADABLE
from dunwell.store import tables
from dunwell.store.db import make_engine
from dunwell.store.migrate import alembic_config
from dunwell.worker import Worker
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.smtp_server import SmtpServer
from tests.integration.test_provider_delivery import _save_smtp

OTHER_KEY = "another-secret-key-after-a-rotation-0123456789"


def _change_key(app: App) -> None:
    app.settings = replace(app.settings, secret_key=OTHER_KEY)
    app._secret = None


def _dun(shop: Shop, email: str) -> None:
    shop.invoice(shop.customer(INSUFFICIENT, email=email), 4900)


def test_one_site_s_unreadable_secret_holds_only_its_messages(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with SmtpServer() as server:
        broken, fine = Shop.create(app, "broken"), Shop.create(app, "fine")
        _save_smtp(broken, server, secret="the old password")
        _save_smtp(fine, server)
        _change_key(app)
        _dun(broken, "a@x.test")
        _dun(fine, "b@x.test")
        with caplog.at_level(logging.ERROR):
            fine.run()
        received = [m.message["To"] for m in server.messages]
    assert set(received) == {"b@x.test"}
    held = broken.all(tables.outbox, channel="email", site_id=broken.site_id)
    assert {(m.status, m.held_reason) for m in held} == {("pending", SECRET_UNREADABLE)}
    assert "site broken" in held[0].last_error
    assert "secret unreadable: was DUNWELL_SECRET_KEY changed?" in held[0].last_error
    assert any("site broken" in r.getMessage() for r in caplog.records)
    assert {m.status for m in fine.all(tables.outbox, channel="email", site_id=fine.site_id)} == {
        "sent"
    }


def test_channels_show_says_a_secret_is_set_but_unreadable(app: App) -> None:
    with SmtpServer() as server:
        shop = Shop.create(app, "broken")
        _save_smtp(shop, server, secret="the old password")
    url = app.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        main,
        ["--database-url", url, "--secret-key", OTHER_KEY, "channels", "show", "--site", "broken"],
    )
    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.output)
    assert shown["secret_set"] is True
    assert "secret unreadable: was DUNWELL_SECRET_KEY changed?" in shown["secret_unreadable"]


def test_a_stage_that_raises_does_not_stop_the_rest_of_the_pass(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken(*_args: object) -> int:
        raise RuntimeError("a bug in the messages stage")

    def later(*_args: object) -> int:
        ran.append("webhooks")
        return 1

    monkeypatch.setattr(worker_module, "deliver_due_messages", broken)
    monkeypatch.setattr(worker_module, "deliver_due_webhooks", later)
    with caplog.at_level(logging.ERROR, "dunwell.worker"):
        assert Worker(app, name="w").run_once() == 1
        Worker(app, name="w").run_once()
    assert ran == ["webhooks", "webhooks"]
    assert any("stage messages failed" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
def test_a_command_needing_the_key_on_postgresql_says_to_set_it(postgres_url: str) -> None:
    def cli(*args: str) -> object:
        env = {"DUNWELL_DATABASE_URL": postgres_url, "PW": "a password"}
        return CliRunner().invoke(main, list(args), env=env)

    created = cli("sites", "create", "acme", "--name", "Acme")
    assert created.exit_code == 0, created.output  # type: ignore[attr-defined]
    config = json.dumps({"host": "smtp.example.com", "from_addr": "billing@acme.example"})
    result = cli(
        "channels",
        "set",
        "--site",
        "acme",
        "email",
        "smtp",
        "--config",
        config,
        "--secret-env",
        "PW",
    )
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "Error: set DUNWELL_SECRET_KEY" in result.output  # type: ignore[attr-defined]
    assert isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]


def _behind(url: str) -> None:
    """Mark the database as one migration behind the code, as if migrate were forgotten."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    (head,) = scripts.get_heads()
    previous = scripts.get_revision(head).down_revision
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    engine.dispose()


def test_a_schema_behind_the_code_stops_the_worker_with_run_migrate(sqlite_url: str) -> None:
    _behind(sqlite_url)
    result = CliRunner().invoke(
        main,
        ["--database-url", sqlite_url, "--secret-key", OTHER_KEY, "worker", "--until-idle"],
        env={},
    )
    assert result.exit_code == 1, result.output
    assert "is behind this Dunwell" in result.output
    assert "run `dunwell migrate`" in result.output


def test_an_empty_database_stops_the_worker_with_run_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(
        main, ["--database-url", url, "--secret-key", OTHER_KEY, "worker", "--until-idle"], env={}
    )
    assert result.exit_code == 1, result.output
    assert "no Dunwell schema yet: run `dunwell migrate`" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["invoices", "show", "--site", "shop"],
        ["messages", "show", "--site", "shop"],
        ["webhooks", "redeliver", "--site", "shop"],
        ["concierge", "show", "--site", "shop"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_an_id_beyond_what_the_database_holds_is_a_usage_error(app: App, args: list[str]) -> None:
    # A 20-digit id used to end in an OverflowError traceback from the driver.
    Shop.create(app)
    url = app.engine.url.render_as_string(hide_password=False)
    base = ["--database-url", url, "--secret-key", OTHER_KEY]
    result = CliRunner().invoke(main, [*base, *args, "99999999999999999999"])
    assert result.exit_code == 2, result.output
    assert "99999999999999999999 is not in the range" in result.output
    assert "Traceback" not in result.output


def test_files_and_json_of_the_wrong_shape_are_clear_errors(app: App, tmp_path: Path) -> None:
    # Each used to end in a traceback: a TypeError, a ValueError, a UnicodeDecodeError.
    Shop.create(app)
    url = app.engine.url.render_as_string(hide_password=False)
    base = ["--database-url", url, "--secret-key", OTHER_KEY]
    policy = tmp_path / "policy.json"
    policy.write_text("[]")
    latin1 = tmp_path / "phones.csv"
    latin1.write_bytes("customer_id,phone\n1,+33612345678 Ren\xe9e\n".encode("latin-1"))

    runs = {
        "policy": [*base, "policies", "save", "--site", "shop", str(policy)],
        "config": [*base, "channels", "set", "--site", "shop", "email", "smtp", "--config", '"x"'],
        "csv": [*base, "phones", "import", "--site", "shop", str(latin1)],
    }
    said = {name: CliRunner().invoke(main, args) for name, args in runs.items()}

    for result in said.values():
        assert result.exit_code in (1, 2), result.output
        assert "Traceback" not in result.output and result.exception is not None
        assert isinstance(result.exception, SystemExit)
    assert "a policy is a JSON object, not list" in said["policy"].output
    assert "must be a JSON object of settings" in said["config"].output
    assert "not UTF-8 text" in said["csv"].output
