"""Settings come from config.toml, the environment overrides them, secrets only from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings


def test_shipped_defaults_are_sqlite_and_no_token() -> None:
    settings = Settings.load(environ={})
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.telegram_token is None


def test_environment_overrides_and_the_token_stays_out_of_repr() -> None:
    environ = {"KISS_DATABASE_URL": "postgresql://x@db/kiss", "TELEGRAM_BOT_TOKEN": "123:SECRET",
               "KISS_LOG_LEVEL": "debug"}
    settings = Settings.load(environ=environ)
    assert settings.database_url == "postgresql://x@db/kiss"
    assert settings.log_level == "DEBUG"
    assert settings.telegram_token == "123:SECRET"
    assert "SECRET" not in repr(settings)


def test_one_web_server_listens_where_told_and_the_old_webhook_name_still_works() -> None:
    assert Settings.load(environ={}).http_listen == "127.0.0.1:8080"
    old = Settings.load(environ={"KISS_WEBHOOK_LISTEN": "127.0.0.1:8443"})
    assert old.http_listen == "127.0.0.1:8443"
    both = {"KISS_WEBHOOK_LISTEN": "127.0.0.1:8443", "KISS_HTTP_LISTEN": "0.0.0.0:9000"}
    assert Settings.load(environ=both).http_listen == "0.0.0.0:9000"


def test_a_missing_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///x"\n')
    with pytest.raises(ConfigError, match=r"config.toml: \[\w+\] \w+ is missing"):
        Settings.load(path, environ={})


def test_a_token_in_the_file_is_ignored(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parent.parent / "config.toml"
    path = tmp_path / "config.toml"
    path.write_text(shipped.read_text() + '\n[secrets]\ntelegram_bot_token = "1:LEAK"\n')
    assert Settings.load(path, environ={}).telegram_token is None


def test_webhook_mode_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings.load(environ={"KISS_WEBHOOK_URL": "https://coach.example.be/telegram"})
    settings = Settings.load(environ={"KISS_WEBHOOK_URL": "https://coach.example.be/telegram",
                                      "TELEGRAM_WEBHOOK_SECRET": "s3cret"})
    assert settings.webhook_secret == "s3cret" and "s3cret" not in repr(settings)


def test_the_schedule_reads_human_durations_and_the_environment_wins() -> None:
    shipped = Settings.load(environ={}).schedule
    assert (shipped.tick, shipped.first_tip_after, shipped.tip_every, shipped.reassess_after) \
        == (timedelta(seconds=30), timedelta(days=2), timedelta(days=7), timedelta(weeks=12))
    assert shipped.reminders == (timedelta(days=2), timedelta(days=7))
    assert shipped.hours.quiet is not None and shipped.hours.rest_on_holidays
    quick = Settings.load(environ={
        "KISS_SCHEDULER_TICK": "5s", "KISS_TIPS_FIRST_AFTER": "1m", "KISS_TIPS_EVERY": "2m",
        "KISS_REASSESS_AFTER": "10m", "KISS_QUIET_HOURS": "", "KISS_REST_DAYS": ""}).schedule
    assert (quick.tick, quick.first_tip_after, quick.tip_every, quick.reassess_after) == (
        timedelta(seconds=5), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=10))
    # Empty in the environment means none: a tip may go out on a Sunday night.
    sunday_night = datetime(2027, 3, 28, 23, 30, tzinfo=UTC)
    assert quick.hours.allowed(sunday_night)
    assert not shipped.hours.allowed(sunday_night)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("KISS_TIPS_EVERY", "weekly", "tips_every"),
    ("KISS_SCHEDULER_TICK", "0s", "tick"),
    ("KISS_QUIET_HOURS", "20-9", "schedule"),
    ("KISS_REST_DAYS", "zondag", "schedule"),
])
def test_a_wrong_schedule_is_refused_with_the_setting_named(variable: str, value: str,
                                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ={variable: value})
