"""Saving dunning policy versions: errors that name the field, and saves that race.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import text

from dunwell.bootstrap import App
from dunwell.cli import main
from dunwell.domain.states import Collection
from dunwell.services import api_keys, policies
from dunwell.services.errors import InvalidInput
from tests.integration.factories import Shop
from tests.integration.refused_notes import REFUSED_NOTES


def admin(shop: Shop) -> dict[str, str]:
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "admin key", "admin", shop.now)
    return {"Authorization": f"Bearer {key}"}


def version_numbers(shop: Shop) -> list[int]:
    with shop.app.connect() as conn:
        return [v.version for v in policies.list_versions(conn, shop.site_id, Collection.AUTOMATIC)]


def email(day: int, template: str = "payment_declined", **more: Any) -> dict[str, Any]:
    return {"day": day, "email_template": template, **more}


# -- a template that does not exist --------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "field", "detail"),
    [
        pytest.param(
            {"steps": [email(1), email(7), email(3, sms_template="no_such_text")]},
            "steps[2].sms_template",
            "there is no sms template 'no_such_text'",
            id="a step's sms, given out of day order, by its place in the list",
        ),
        pytest.param(
            {"steps": [email(5, "no_such_mail"), email(2, "no_such_mail")]},
            "steps[0].email_template",
            "there is no email template 'no_such_mail'",
            id="a template used twice, at its first place in the list",
        ),
        pytest.param(
            {"steps": [email(1)], "final": {"email_template": "no_such_mail"}},
            "final.email_template",
            "there is no email template 'no_such_mail'",
            id="the final email",
        ),
    ],
)
def test_a_missing_template_is_refused_naming_the_field_that_uses_it(
    client: TestClient, shop: Shop, policy: dict[str, Any], field: str, detail: str
) -> None:
    response = client.post(
        "/v1/dunning_policies/automatic", json={"policy": policy}, headers=admin(shop)
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["field"], body["detail"]) == (field, detail)
    assert version_numbers(shop) == [1]


def test_the_service_names_the_final_email_and_not_the_steps(app: App, shop: Shop) -> None:
    with pytest.raises(InvalidInput) as raised, app.begin() as conn:
        policies.save_policy(
            conn,
            shop.site_id,
            Collection.AUTOMATIC,
            {"final": {"email_template": "gone"}},
            shop.now,
        )
    assert str(raised.value) == "final.email_template: there is no email template 'gone'"


# -- the note -------------------------------------------------------------------------


@pytest.mark.parametrize(("note", "message"), REFUSED_NOTES)
def test_the_service_refuses_a_note_the_api_would(
    app: App, shop: Shop, note: str, message: str
) -> None:
    # The CLI and the dashboard save through here without the API's checks.
    with pytest.raises(InvalidInput) as raised, app.begin() as conn:
        policies.save_policy(conn, shop.site_id, Collection.AUTOMATIC, {}, shop.now, note)
    assert (raised.value.field, raised.value.message) == ("note", message)
    assert version_numbers(shop) == [1]


def test_a_note_of_500_characters_is_kept(app: App, shop: Shop) -> None:
    with app.begin() as conn:
        saved = policies.save_policy(
            conn, shop.site_id, Collection.AUTOMATIC, {}, shop.now, "n" * 500
        )
    assert saved.note == "n" * 500


def test_the_cli_refuses_a_note_over_500_characters_naming_it(
    app: App, shop: Shop, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    url = app.engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "--secret-key", "test-secret-key", "policies", "save"]
    result = CliRunner().invoke(main, [*args, "--site", "shop", str(policy), "--note", "n" * 501])
    assert result.exit_code == 1, result.output
    assert "note: must be at most 500 characters" in result.output
    assert "Traceback" not in result.output
    assert version_numbers(shop) == [1]


# -- a leftover downgrade plan ---------------------------------------------------------


def test_a_downgrade_plan_beside_a_cancel_is_not_stored(client: TestClient, shop: Shop) -> None:
    final = {"subscription_action": "cancel", "downgrade_plan": "plan"}
    response = client.post(
        "/v1/dunning_policies/automatic", json={"policy": {"final": final}}, headers=admin(shop)
    )
    assert response.status_code == 200, response.text
    assert response.json()["policy"]["final"]["downgrade_plan"] is None


# -- two saves at once -----------------------------------------------------------------


def wait_until_blocked(app: App) -> None:
    """Return once another transaction waits for a lock (PostgreSQL), or after a pause."""
    if app.engine.dialect.name != "postgresql":
        time.sleep(0.3)  # SQLite: the second save waits for the write lock (BEGIN IMMEDIATE)
        return
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with app.engine.connect() as conn:
            if conn.execute(waiting).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the second save never waited for the first")


def test_two_saves_at_once_become_two_versions(app: App, shop: Shop) -> None:
    # A double-clicked Save, or two admins: each save must get its own number,
    # never a unique-constraint error (a 500) for the second.
    outcomes: list[Any] = []
    first_written = threading.Event()

    def second_save() -> None:
        first_written.wait(10)
        try:
            with app.begin() as conn:
                saved = policies.save_policy(
                    conn, shop.site_id, Collection.AUTOMATIC, {"final_day": 9}, shop.now
                )
            outcomes.append(saved.version)
        except Exception as error:  # the failure is what the test reports
            outcomes.append(error)

    thread = threading.Thread(target=second_save)
    thread.start()
    with app.begin() as conn:
        policies.save_policy(conn, shop.site_id, Collection.AUTOMATIC, {"final_day": 10}, shop.now)
        first_written.set()
        wait_until_blocked(app)
    thread.join(20)

    assert outcomes == [3]
    assert version_numbers(shop) == [1, 2, 3]
    with app.connect() as conn:
        listed = policies.list_versions(conn, shop.site_id, Collection.AUTOMATIC)
    assert [v.policy.final_day for v in listed] == [15, 10, 9]
