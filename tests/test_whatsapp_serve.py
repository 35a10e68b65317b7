"""``kiss-coach run`` with both channels: one process, one web server, Telegram's webhook at
/telegram/webhook and WhatsApp's at /whatsapp/webhook, each against its emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from graph_emulator import GraphEmulator
from telegram_emulator import BotAPIEmulator
from test_whatsapp import WA, asks, whatsapp_settings

from bot import serve
from bot.config import Settings

CHAT = 4242


async def test_telegram_and_whatsapp_are_served_by_one_process(
        settings: Settings, unused_tcp_port: int) -> None:
    listen = f"127.0.0.1:{unused_tcp_port}"
    async with BotAPIEmulator() as telegram, GraphEmulator() as graph:
        both = replace(settings, telegram_token=telegram.token,
                       telegram_api_base_url=telegram.base_url, http_listen=listen,
                       webhook_url=f"http://{listen}/telegram/webhook",
                       webhook_secret="s3cret-Token_1", whatsapp=whatsapp_settings(graph))
        assert serve.configured(both) == ["telegram", "whatsapp"]
        stop = asyncio.Event()
        running = asyncio.create_task(serve.serve(both, stop))
        try:
            graph.webhook_url = f"http://{listen}/whatsapp/webhook"
            telegram.set_webhook_target(f"http://{listen}/telegram/webhook", "s3cret-Token_1")
            async with asyncio.timeout(15):
                while True:  # the server is up once WhatsApp's post is answered
                    try:
                        await graph.user_sends_text(WA, "hallo")
                        break
                    except OSError:
                        await asyncio.sleep(0.05)  # not listening yet: no event to wait on
            telegram.user_sends_text(CHAT, "/start")
            assert await telegram.deliver_pending_webhooks() == [200]
            await graph.settle(WA, asks("In welke taal"))
            async with asyncio.timeout(15):
                while not any("In welke taal" in (m["text"] or "")
                              for m in telegram.messages_to(CHAT)):
                    await telegram.wait_for_sent(len(telegram.sent) + 1, chat_id=CHAT)
        finally:
            stop.set()
            assert await running == 0
        assert graph.webhook_answers[-1] == 200
        assert not [e for e in graph.errors if not e.get("injected")]
