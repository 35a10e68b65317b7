"""The Telegram channel (python-telegram-bot 22 on an aiohttp transport)."""

import os

# Opt in to python-telegram-bot's timedelta durations now (RetryAfter.retry_after and
# friends); without it every 429 also raises a deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from bot.telegram.serve import TelegramBot, WebhookInUse

__all__ = ["TelegramBot", "WebhookInUse"]
