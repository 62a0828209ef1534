"""``dunwell demo-site --history``: the shop ``make run`` opens on."""

from __future__ import annotations

import re

from tests.e2e.conftest import Cli


def test_the_history_demo_fills_every_part_of_the_dashboard(cli: Cli) -> None:
    cli("migrate")
    out = cli("demo-site", "--history", "--password", "demo password 1").stdout
    for role in ("owner", "configuration", "analytics", "support"):
        assert re.search(rf"{role}\s+{role}@demo\.example", out), out
    assert "dwk_" in out
    # Paid renewals, invoices lost at the end of dunning, and some still in it.
    for status in ("paid", "failed", "past_due"):
        found = cli.json("invoices", "list", "--site", "demo", "--status", status, "--json")
        assert found, f"no {status} invoice"
    conversations = cli("concierge", "conversations", "--site", "demo").stdout
    assert conversations.strip(), "no concierge conversations"
    users = [line for line in cli("users", "list", "--site", "demo").stdout.splitlines() if line]
    assert len(users) == 4
    # Texting as a customer from the command line gets the concierge's answer.
    answer = cli("sandbox", "reply", "--site", "demo", "--from", "+33612000001", "skip next month")
    assert "Reply YES to confirm" in answer.stdout, answer.stdout
    unknown = cli(
        "sandbox", "reply", "--site", "nosuch", "--from", "+33612000001", "hi", check=False
    )
    assert unknown.returncode != 0 and "no site 'nosuch'" in unknown.stderr
    # A second run with --if-empty leaves the data alone.
    again = cli("demo-site", "--if-empty", "--history").stdout
    assert "no demo site created" in again
