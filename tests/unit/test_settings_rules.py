"""Settings and keys the server refuses, each with a message naming what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dunwell.cli import main
from dunwell.security.keys import MissingSecretKey, resolve_secret_key
from dunwell.settings import Settings

MIN_KEY_LENGTH = 32


def _sqlite(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}")


def test_an_empty_key_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "d.db.key").write_text("\n")
    with pytest.raises(MissingSecretKey, match=r"d\.db\.key holds a key of 0 characters"):
        resolve_secret_key(_sqlite(tmp_path))


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.db.key").write_text("x" * (MIN_KEY_LENGTH - 1))
    with pytest.raises(MissingSecretKey, match=f"at least {MIN_KEY_LENGTH}"):
        resolve_secret_key(_sqlite(tmp_path))


def test_a_new_key_file_is_long_enough_and_kept(tmp_path: Path) -> None:
    first = resolve_secret_key(_sqlite(tmp_path))
    assert len(first) >= MIN_KEY_LENGTH
    assert resolve_secret_key(_sqlite(tmp_path)) == first


def test_a_blank_configured_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+psycopg://u@h/d", secret_key="   ")
    with pytest.raises(MissingSecretKey, match="DUNWELL_SECRET_KEY is blank"):
        resolve_secret_key(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BATCH_SIZE", "0", "DUNWELL_BATCH_SIZE must be at least 1, not 0"),
        ("BATCH_SIZE", "-5", "DUNWELL_BATCH_SIZE must be at least 1, not -5"),
        ("DELIVERY_BATCH_SIZE", "-1", "DUNWELL_DELIVERY_BATCH_SIZE must be 0 or more, not -1"),
        ("LEASE_SECONDS", "0", "DUNWELL_LEASE_SECONDS must be at least 1"),
        ("POLL_SECONDS", "0", "DUNWELL_POLL_SECONDS must be above 0"),
        ("POLL_SECONDS", "-1", "DUNWELL_POLL_SECONDS must be above 0"),
        ("MAX_REQUEST_BYTES", "1000", "DUNWELL_MAX_REQUEST_BYTES must be at least 65536"),
        ("MAX_UPLOAD_BYTES", "0", "DUNWELL_MAX_UPLOAD_BYTES must be at least 65536, not 0"),
        ("PORT", "0", "DUNWELL_PORT must be between 1 and 65535, not 0"),
        ("PORT", "70000", "DUNWELL_PORT must be between 1 and 65535"),
        ("INBOUND_WRITER", "fork", "DUNWELL_INBOUND_WRITER must be one of process, thread"),
        ("PUBLIC_URL", "billing.example.com", "DUNWELL_PUBLIC_URL='billing.example.com' must be"),
        ("PUBLIC_URL", "ftp://x.example", "must be an http:// or https:// address"),
        ("PUBLIC_URL", "https://", "must be an http:// or https:// address with a host"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env({f"DUNWELL_{variable}": value})


def test_a_bad_flag_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(main, ["--batch-size", "0", "sites", "list"], env={})
    assert result.exit_code == 2
    assert "DUNWELL_BATCH_SIZE must be at least 1, not 0" in result.output


def test_good_values_pass() -> None:
    settings = Settings.from_env(
        {
            "DUNWELL_PORT": "65535",
            "DUNWELL_PUBLIC_URL": "https://b.example",
            "DUNWELL_DELIVERY_BATCH_SIZE": "0",  # a worker that only collects
        }
    )
    assert (settings.port, settings.delivery_batch_size) == (65535, 0)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://dunwell:hunter2@db/dunwell", "names no usable driver"),
        ("postgresql://dunwell:hunter2@db/dunwell", "write postgresql+psycopg://"),
        ("postgresql+psycopg2://dunwell:hunter2@db/dunwell", "write postgresql+psycopg://"),
        ("mysql://dunwell:hunter2@db/dunwell", "is not supported"),
        ("dunwell:hunter2@db", "is not a database URL"),
    ],
)
def test_a_bad_database_url_is_a_usage_error_without_the_password(url: str, message: str) -> None:
    result = CliRunner().invoke(main, ["--database-url", url, "migrate"], env={})
    assert result.exit_code == 2, result.output
    assert "DUNWELL_DATABASE_URL" in result.output
    assert message in result.output
    assert "hunter2" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
