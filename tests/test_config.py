"""Settings come from config.toml, the environment overrides them, secrets only from it."""

from __future__ import annotations

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
