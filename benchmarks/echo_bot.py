"""The baseline: a bare python-telegram-bot echo bot on its default (httpx) transport.

Run by ``telegram_load.py``; ``python benchmarks/echo_bot.py BASE_URL TOKEN``.
"""

from __future__ import annotations

import sys

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(update.effective_message.text or "?")


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    application = (ApplicationBuilder().token(token).base_url(base_url)
                   .concurrent_updates(256).build())
    application.add_handler(MessageHandler(filters.TEXT, echo))
    print("echo bot polling", flush=True)
    application.run_polling(poll_interval=0, timeout=10)


if __name__ == "__main__":
    main()
