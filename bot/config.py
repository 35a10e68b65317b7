"""Settings: ``config.toml`` for defaults, the environment for overrides and secrets.

A key missing from the file is an error (it would otherwise silently take a value nobody
chose); secrets are never read from the file, so a committed config cannot leak one.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.delivery.sender import DeliverySettings
from bot.whatsapp.settings import WhatsAppSettings
from bot.whatsapp.settings import from_config as whatsapp_from_config
from flows.timing import SendingHours, parse_duration
from handlers.language_model import ModelSettings
from handlers.privacy import Privacy
from handlers.schedule import Schedule

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(Exception):
    """The configuration is incomplete or contradictory."""


@dataclass(frozen=True, slots=True)
class Operator:
    """What the operator watches on the web server: ``/healthz`` and ``/metrics``
    (``[http]`` in config.toml; the token from the environment only)."""

    #: ``yes``: served whenever a channel is; ``always``: also without any channel (the web
    #: server then runs for them alone); ``no``: not served.
    endpoints: str = "yes"
    #: ``/healthz`` answers 503 when a due message has waited longer than this.
    backlog_limit: timedelta = timedelta(minutes=5)
    #: The longest ``/healthz`` waits for the database before it calls it unreachable.
    timeout: timedelta = timedelta(seconds=2)
    #: ``Authorization: Bearer`` token for ``/metrics``; without one, ``/metrics`` answers
    #: only on a loopback listener, and only to requests no proxy forwarded.
    metrics_token: str | None = field(default=None, repr=False)  # secret


#: The values ``[http] operator_endpoints`` takes.
OPERATOR_ENDPOINTS = ("yes", "always", "no")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    charts_dir: Path
    telegram_api_base_url: str
    log_level: str
    telegram_token: str | None = field(default=None, repr=False)  # secret: kept out of repr
    webhook_url: str = ""
    #: Where the bot's one web server listens (webhooks, dashboard, health).
    http_listen: str = "127.0.0.1:8080"
    #: ``/healthz`` and ``/metrics`` (``[http]``, ``KISS_METRICS_TOKEN``).
    operator: Operator = field(default_factory=Operator)
    #: ``plain`` or ``json`` lines (``[logging] format``, ``KISS_LOG_FORMAT``).
    log_format: str = "plain"
    webhook_secret: str | None = field(default=None, repr=False)  # secret
    concurrent_updates: int = 256
    telegram_rate: float = 25.0
    telegram_paid_rate: float = 1000.0
    chat_rate: float = 1.0
    chat_burst: int = 3
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    #: Addresses (``telegram:777``) that are admins because the environment says so.
    admin_ids: frozenset[str] = frozenset()
    schedule: Schedule = field(default_factory=Schedule)
    privacy: Privacy = field(default_factory=Privacy)
    #: Where people reach the dashboard (``KISS_PUBLIC_URL``); empty: ``http://`` + the
    #: listen address. Login links start with it; https makes the cookie Secure.
    public_url: str = ""


    #: The language model answering questions (``[llm]``); without a key: tips only.
    llm: ModelSettings = field(default_factory=ModelSettings)
    #: The coaches' Telegram group (its chat id, e.g. -1001234567890) that gets ticket
    #: notices; empty: each coach in their private chat.
    coaches_chat: str = ""
    #: WhatsApp Cloud API (``[whatsapp]``); served when its secrets and number are set.
    whatsapp: WhatsAppSettings = field(default_factory=WhatsAppSettings)

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

        webhook_url = value("telegram", "webhook_url", "KISS_WEBHOOK_URL")
        webhook_secret = env.get("TELEGRAM_WEBHOOK_SECRET") or None
        if webhook_url and not webhook_secret:
            raise ConfigError("webhook mode needs TELEGRAM_WEBHOOK_SECRET in the environment")
        try:
            concurrent = int(value("telegram", "concurrent_updates", "KISS_CONCURRENT_UPDATES"))
            rates = (float(value("telegram", "rate", "KISS_TELEGRAM_RATE")),
                     float(value("telegram", "paid_broadcast_rate", "KISS_TELEGRAM_PAID_RATE")),
                     float(value("telegram", "chat_rate", "KISS_TELEGRAM_CHAT_RATE")))
            chat_burst = int(value("telegram", "chat_burst", "KISS_TELEGRAM_CHAT_BURST"))
            delivery = DeliverySettings(
                max_attempts=int(value("delivery", "max_attempts", "KISS_MAX_ATTEMPTS")),
                backoff_base=float(value("delivery", "backoff_base_seconds",
                                         "KISS_BACKOFF_BASE_SECONDS")),
                backoff_max=float(value("delivery", "backoff_max_seconds",
                                        "KISS_BACKOFF_MAX_SECONDS")),
                lease_seconds=float(value("delivery", "lease_seconds", "KISS_LEASE_SECONDS")),
                poll_seconds=float(value("delivery", "poll_seconds", "KISS_POLL_SECONDS")),
                resend_uncertain_replies=_flag(value(
                    "delivery", "resend_uncertain_replies", "KISS_RESEND_UNCERTAIN_REPLIES")))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        schedule = _schedule(value, lambda section, key, variable: (
            env[variable] if variable in env else value(section, key, variable)), path)
        privacy = _privacy(data, value, path)
        admin_ids = frozenset(
            address.strip() for address in value("roles", "admin_ids", "KISS_ADMIN_IDS")
            .split(",") if address.strip())
        for address in admin_ids:
            if not _ADDRESS.fullmatch(address):
                raise ConfigError(f"KISS_ADMIN_IDS: {address!r} is not CHANNEL:ID, "
                                  "e.g. telegram:777")
        return cls(
            database_url=value("database", "url", "KISS_DATABASE_URL"),
            charts_dir=Path(value("chat", "charts_dir", "KISS_CHARTS_DIR")),
            telegram_api_base_url=value("telegram", "api_base_url", "TELEGRAM_API_BASE_URL"),
            log_level=value("logging", "level", "KISS_LOG_LEVEL").upper(),
            telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            webhook_url=webhook_url,
            # KISS_WEBHOOK_LISTEN: its name before the server served more than Telegram.
            http_listen=(env.get("KISS_HTTP_LISTEN") or env.get("KISS_WEBHOOK_LISTEN")
                         or value("http", "listen", "KISS_HTTP_LISTEN")),
            operator=_operator(value, env, path),
            log_format=_log_format(value("logging", "format", "KISS_LOG_FORMAT"), path),
            webhook_secret=webhook_secret,
            concurrent_updates=concurrent,
            telegram_rate=rates[0], telegram_paid_rate=rates[1], chat_rate=rates[2],
            chat_burst=chat_burst, delivery=delivery, admin_ids=admin_ids, schedule=schedule,
            privacy=privacy,
            public_url=value("dashboard", "public_url", "KISS_PUBLIC_URL").rstrip("/"),


            llm=_llm(value, env, path),
            coaches_chat=_coaches_chat(value("tickets", "coaches_chat", "KISS_COACHES_CHAT")),
            whatsapp=_whatsapp(data, env, path),
        )


Lookup = Callable[[str, str, str], str]


def public_url(settings: Settings) -> str:
    """The dashboard's address as people reach it: ``KISS_PUBLIC_URL``, else ``http://``
    and where the web server listens."""
    return settings.public_url or f"http://{settings.http_listen}"


def _operator(value: Lookup, env: Mapping[str, str], path: Path) -> Operator:
    """``[http]``'s operator part: which endpoints, and when ``/healthz`` says 503."""
    endpoints = value("http", "operator_endpoints", "KISS_OPERATOR_ENDPOINTS").lower()
    if endpoints not in OPERATOR_ENDPOINTS:
        raise ConfigError(f"{path}: [http] operator_endpoints (KISS_OPERATOR_ENDPOINTS) is "
                          f"{endpoints!r}, not one of {', '.join(OPERATOR_ENDPOINTS)}")

    def duration(key: str, variable: str) -> timedelta:
        try:
            found = parse_duration(value("http", key, variable))
        except ValueError as exc:
            raise ConfigError(f"[http] {key} ({variable}): {exc}") from None
        if found <= timedelta(0):
            raise ConfigError(f"[http] {key} ({variable}) must be longer than 0")
        return found

    return Operator(endpoints=endpoints,
                    backlog_limit=duration("healthz_backlog_limit", "KISS_HEALTHZ_BACKLOG_LIMIT"),
                    timeout=duration("healthz_timeout", "KISS_HEALTHZ_TIMEOUT"),
                    metrics_token=env.get("KISS_METRICS_TOKEN") or None)


def _log_format(text: str, path: Path) -> str:
    form = text.lower()
    if form not in ("plain", "json"):
        raise ConfigError(f"{path}: [logging] format (KISS_LOG_FORMAT) is {text!r}, "
                          "not plain or json")
    return form


def _coaches_chat(text: str) -> str:
    """``[tickets] coaches_chat``: empty, or a Telegram group's chat id (negative)."""
    chat = text.strip()
    if chat and not re.fullmatch(r"-\d{5,20}", chat):
        raise ConfigError(f"[tickets] coaches_chat (KISS_COACHES_CHAT): {chat!r} is not a "
                          "Telegram group's chat id, like -1001234567890")
    return chat


def _schedule(value: Lookup, allow_empty: Lookup, path: Path) -> Schedule:
    """``[schedule]``: durations with units; quiet hours and rest days may be set empty in
    the environment (none), which the other settings may not."""
    def duration(key: str, variable: str) -> timedelta:
        text = value("schedule", key, variable)
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"[schedule] {key} ({variable}): {exc}") from None

    try:
        reminders = tuple(parse_duration(part) for part in value(
            "schedule", "reminders_after", "KISS_REMINDERS_AFTER").split(",") if part.strip())
        hours = SendingHours.parse(allow_empty("schedule", "quiet_hours", "KISS_QUIET_HOURS"),
                                   allow_empty("schedule", "rest_days", "KISS_REST_DAYS"))
    except ValueError as exc:
        raise ConfigError(f"{path} [schedule]: {exc}") from None
    return Schedule(
        tick=duration("tick", "KISS_SCHEDULER_TICK"),
        first_tip_after=duration("tips_first_after", "KISS_TIPS_FIRST_AFTER"),
        tip_every=duration("tips_every", "KISS_TIPS_EVERY"),
        reassess_after=duration("reassess_after", "KISS_REASSESS_AFTER"),
        later_after=duration("tips_later_after", "KISS_TIPS_LATER_AFTER"),
        check_in_after=duration("check_in_after", "KISS_CHECK_IN_AFTER"),
        reminders=reminders, hours=hours)


def _privacy(data: Mapping[str, Any], value: Lookup, path: Path) -> Privacy:
    """``[privacy]``: the controller's details per language, the contact, and the retention
    periods (durations with units; ``inactive_after`` also in months, e.g. "24 months")."""
    section = data.get("privacy", {})

    def per_language(key: str) -> dict[str, str]:
        found = section.get(key)
        if not isinstance(found, dict) or not found.get("nl"):
            raise ConfigError(f"{path}: [privacy] {key} must give at least nl = \"…\"")
        return {str(lang): str(text) for lang, text in found.items()}

    def duration(key: str, variable: str) -> timedelta:
        text = value("privacy", key, variable)
        months = _MONTHS.fullmatch(text.strip().casefold())
        try:
            return (timedelta(days=round(int(months[1]) * 30.4375)) if months
                    else parse_duration(text))
        except ValueError as exc:
            raise ConfigError(f"[privacy] {key} ({variable}): {exc}") from None

    contact = value("privacy", "contact", "KISS_PRIVACY_CONTACT")
    if "@" not in contact:
        raise ConfigError(f"{path}: [privacy] contact must be an e-mail address")
    return Privacy(
        controller=per_language("controller"), partners=per_language("partners"),
        contact=contact,
        inactive_after=duration("inactive_after", "KISS_RETENTION_INACTIVE_AFTER"),
        erase_after_notice=duration("erase_after_notice", "KISS_RETENTION_ERASE_AFTER_NOTICE"),
        unconsented_kept=duration("unconsented_kept", "KISS_RETENTION_UNCONSENTED_KEPT"))


_MONTHS = re.compile(r"([0-9]+)\s*(?:months?|mo)")
_ADDRESS = re.compile(r"[a-z]+:[\w.@+-]{1,64}")


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{text!r} is not true or false")


def _llm(value: Lookup, env: Mapping[str, str], path: Path) -> ModelSettings:
    """``[llm]``: the model, its limits and the costs; the key from the environment only."""
    try:
        return ModelSettings(
            api_key=env.get("OPENAI_API_KEY") or None,
            base_url=value("llm", "base_url", "OPENAI_BASE_URL"),
            model=value("llm", "model", "KISS_LLM_MODEL"),
            timeout_seconds=float(value("llm", "timeout_seconds", "KISS_LLM_TIMEOUT_SECONDS")),
            max_retries=int(value("llm", "max_retries", "KISS_LLM_MAX_RETRIES")),
            max_answer_tokens=int(value("llm", "max_answer_tokens",
                                        "KISS_LLM_MAX_ANSWER_TOKENS")),
            daily_questions=int(value("llm", "daily_questions", "KISS_LLM_DAILY_QUESTIONS")),
            monthly_tokens=int(value("llm", "monthly_tokens", "KISS_LLM_MONTHLY_TOKENS")))
    except ValueError as exc:
        raise ConfigError(f"{path} [llm]: {exc}") from None


def _whatsapp(data: Mapping[str, Any], env: Mapping[str, str], path: Path) -> WhatsAppSettings:
    """``[whatsapp]``: the API, rates, tier and templates; secrets from the environment."""
    try:
        return whatsapp_from_config(data.get("whatsapp", {}), env)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
