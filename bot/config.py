"""Settings: ``config.toml`` for defaults, the environment for overrides and secrets.

A key missing from the file is an error (it would otherwise silently take a value nobody
chose); secrets are never read from the file, so a committed config cannot leak one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(Exception):
    """The configuration is incomplete or contradictory."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    charts_dir: Path
    telegram_api_base_url: str
    log_level: str
    telegram_token: str | None = field(default=None, repr=False)  # secret: kept out of repr
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8443"
    webhook_secret: str | None = field(default=None, repr=False)  # secret
    admin_chat_id: int | None = None
    concurrent_updates: int = 256

    @classmethod
    def load(cls, path: Path | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``path`` (``KISS_CONFIG`` or the shipped file), then apply the environment."""
        env = os.environ if environ is None else environ
        path = path or Path(env.get("KISS_CONFIG", DEFAULT_FILE))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc

        def value(section: str, key: str, variable: str) -> str:
            if env.get(variable):
                return env[variable]
            try:
                found: Any = data[section][key]
            except KeyError:
                raise ConfigError(f"{path}: [{section}] {key} is missing") from None
            return str(found)

        admin_chat = value("telegram", "admin_chat_id", "KISS_ADMIN_CHAT_ID")
        webhook_url = value("telegram", "webhook_url", "KISS_WEBHOOK_URL")
        webhook_secret = env.get("TELEGRAM_WEBHOOK_SECRET") or None
        if webhook_url and not webhook_secret:
            raise ConfigError("webhook mode needs TELEGRAM_WEBHOOK_SECRET in the environment")
        try:
            admin_chat_id = int(admin_chat) if admin_chat else None
            concurrent = int(value("telegram", "concurrent_updates", "KISS_CONCURRENT_UPDATES"))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls(
            database_url=value("database", "url", "KISS_DATABASE_URL"),
            charts_dir=Path(value("chat", "charts_dir", "KISS_CHARTS_DIR")),
            telegram_api_base_url=value("telegram", "api_base_url", "TELEGRAM_API_BASE_URL"),
            log_level=value("logging", "level", "KISS_LOG_LEVEL").upper(),
            telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            webhook_url=webhook_url,
            webhook_listen=value("telegram", "webhook_listen", "KISS_WEBHOOK_LISTEN"),
            webhook_secret=webhook_secret,
            admin_chat_id=admin_chat_id,
            concurrent_updates=concurrent,
        )
