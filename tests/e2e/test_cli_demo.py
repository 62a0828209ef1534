from __future__ import annotations

from tests.e2e.conftest import Cli

FIGURES = {
    "invoices_failed",
    "recovered",
    "recovery_rate",
    "recovered_amount_minor",
    "by_outcome",
    "attempts",
    "messages",
    "elapsed_s",
}


def test_the_demo_prints_its_figures_and_the_same_seed_gives_the_same_figures(cli: Cli) -> None:
    first = cli.json("demo", "--customers", "120", "--days", "40", "--seed", "3", "--json")
    second = cli.json("demo", "--customers", "120", "--days", "40", "--seed", "3", "--json")
    assert set(first) == FIGURES
    first.pop("elapsed_s")
    second.pop("elapsed_s")
    assert first == second
    assert first["invoices_failed"] > 0
    assert 0 < first["recovered"] < first["invoices_failed"]
    assert sum(first["by_outcome"].values()) == first["invoices_failed"]
    assert first["by_outcome"]["paid"] == first["recovered"]
    assert first["recovery_rate"] == round(first["recovered"] / first["invoices_failed"], 4)
    # Every failed payment's day-1 step emailed the customer, and texted those with a phone.
    assert first["messages"]["email_delivered"] >= first["invoices_failed"]
    assert first["messages"]["sms_delivered"] > 0


def test_a_different_seed_gives_different_figures(cli: Cli) -> None:
    one = cli.json("demo", "--customers", "120", "--days", "20", "--seed", "1", "--json")
    two = cli.json("demo", "--customers", "120", "--days", "20", "--seed", "2", "--json")
    one.pop("elapsed_s")
    two.pop("elapsed_s")
    assert one != two


def test_the_invoice_commands_drive_a_sandbox_site_through_dunning(cli: Cli) -> None:
    cli("demo-site")
    cli("worker", "--until-idle")  # nothing due yet: renewals start in an hour
    assert cli.json("invoices", "list", "--site", "demo", "--json") == []
    cli("clock", "advance", "--site", "demo", "2h")
    cli("worker", "--until-idle")
    invoices = cli.json("invoices", "list", "--site", "demo", "--json")
    statuses = sorted(i["status"] for i in invoices)
    assert statuses == ["paid", "past_due", "past_due", "past_due", "past_due"]
    past_due = [i["id"] for i in invoices if i["status"] == "past_due"]
    cli("invoices", "mark-paid", "--site", "demo", str(past_due[0]))
    cli("invoices", "stop", "--site", "demo", str(past_due[1]))
    refused = cli("invoices", "stop", "--site", "demo", str(past_due[1]), check=False)
    assert refused.returncode != 0
    assert "it is failed" in refused.stderr
    detail = cli.json("invoices", "show", "--site", "demo", str(past_due[0]))
    assert detail["status"] == "paid"
    assert [a["attempt_no"] for a in detail["attempts_log"]] == [1]


def test_the_clock_refuses_a_malformed_duration_and_names_it(cli: Cli) -> None:
    cli("demo-site")
    result = cli("clock", "advance", "--site", "demo", "soon", check=False)
    assert result.returncode != 0
    assert "'soon' is not like 3d" in result.stderr


def test_a_setting_flag_overrides_the_environment(cli: Cli, tmp_path: object) -> None:
    other = f"sqlite:///{tmp_path}/other.db"  # type: ignore[str-bytes-safe]
    out = cli("--database-url", other, "migrate").stdout
    assert "other.db" in out
