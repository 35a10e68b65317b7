"""The Telegram channel (python-telegram-bot 22 on an aiohttp transport)."""

from bot.telegram.serve import TelegramBot, run_telegram

__all__ = ["TelegramBot", "run_telegram"]
