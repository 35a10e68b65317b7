"""WhatsApp's settings: ``[whatsapp]`` in config.toml, secrets from the environment only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Kinds of message that may go out when nobody is waiting for them, each with its own
#: policy outside the 24-hour window; ``other`` is everything else (a coach's late answer).
KINDS = ("tip", "reminder", "broadcast", "check_in", "other")
#: What a kind does outside the window: an approved template, or wait for the person.
POLICIES = ("template", "wait")
#: Meta's daily unique-recipient tiers for business-initiated messages.
TIERS = (250, 2000, 10000, 100000)


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template: its name and, per language of ours, its language code at Meta.
    Its body has one parameter: the message's text on one line."""

    name: str
    languages: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class WhatsAppSettings:
    """How the bot talks to the WhatsApp Cloud API."""

    access_token: str | None = field(default=None, repr=False)  # secret
    app_secret: str | None = field(default=None, repr=False)  # secret
    verify_token: str | None = field(default=None, repr=False)  # secret
    phone_number_id: str = ""
    api_base_url: str = "https://graph.facebook.com/v23.0"
    #: Messages per second for the number (Cloud API default throughput: 80).
    rate: float = 80.0
    #: In bulk, at most one message per this many seconds to the same person.
    pair_seconds: float = 6.0
    #: Unique people a day that business-initiated (template) messages may reach.
    daily_tier: int = 250
    #: Bodies of webhook posts larger than this get 413.
    max_body: int = 3 * 1024 * 1024
    templates: Mapping[str, Template] = field(default_factory=dict)
    outside_window: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(
        KINDS, "wait"))

    @property
    def configured(self) -> bool:
        """Everything needed to serve WhatsApp is set."""
        return bool(self.access_token and self.app_secret and self.verify_token
                    and self.phone_number_id)

    def policy(self, kind: str) -> str:
        """``template`` or ``wait`` for a kind of message outside the window."""
        return self.outside_window.get(kind, self.outside_window.get("other", "wait"))


def from_config(section: Mapping[str, Any], env: Mapping[str, str]) -> WhatsAppSettings:
    """``[whatsapp]`` with the environment over it. Raises ValueError naming what is wrong."""
    def value(key: str, variable: str) -> Any:
        if env.get(variable):
            return env[variable]
        if key not in section:
            raise ValueError(f"[whatsapp] {key} is missing")
        return section[key]

    tier = int(value("daily_tier", "KISS_WHATSAPP_DAILY_TIER"))
    if tier not in TIERS:
        raise ValueError(f"[whatsapp] daily_tier {tier}: one of {TIERS}")
    policies = dict(section.get("outside_window") or {})
    for kind, policy in policies.items():
        if kind not in KINDS or policy not in POLICIES:
            raise ValueError(f"[whatsapp.outside_window] {kind} = {policy!r}: kinds are "
                             f"{KINDS}, policies {POLICIES}")
    templates = {}
    for kind, spec in dict(section.get("templates") or {}).items():
        if kind not in KINDS or not isinstance(spec, dict) or not spec.get("name"):
            raise ValueError(f"[whatsapp.templates.{kind}] needs a name (kinds: {KINDS})")
        templates[kind] = Template(str(spec["name"]), {
            str(lang): str(code) for lang, code in dict(spec.get("languages") or {}).items()})
    for kind in KINDS:
        if policies.get(kind) == "template" and kind not in templates:
            raise ValueError(f"[whatsapp.outside_window] {kind} uses a template: "
                             f"add [whatsapp.templates.{kind}]")
    return WhatsAppSettings(
        access_token=env.get("WHATSAPP_ACCESS_TOKEN") or None,
        app_secret=env.get("WHATSAPP_APP_SECRET") or None,
        verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
        phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
        api_base_url=str(value("api_base_url", "WHATSAPP_API_BASE_URL")).rstrip("/"),
        rate=float(value("rate", "KISS_WHATSAPP_RATE")),
        pair_seconds=float(value("pair_seconds", "KISS_WHATSAPP_PAIR_SECONDS")),
        daily_tier=tier,
        max_body=int(value("max_body_bytes", "KISS_WHATSAPP_MAX_BODY_BYTES")),
        templates=templates,
        outside_window={**dict.fromkeys(KINDS, "wait"), **policies})
