"""A question to the coach end to end on Telegram: the real python-telegram-bot against the
Bot API emulator, the real openai client against the OpenAI emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from openai_emulator import Answer, OpenAIEmulator
from telegram_emulator import BotAPIEmulator
from test_telegram import CHAT, asks, onboard, press, says, settle

from bot.app import build
from bot.config import Settings
from bot.telegram import TelegramBot
from handlers.language_model import ModelSettings


@pytest.fixture
async def ai() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


async def test_a_question_after_the_check_gets_typing_a_labelled_answer_and_a_coach_button(
        settings: Settings, ai: OpenAIEmulator) -> None:
    ai.script(Answer("Zet een QR-kaartje naar je Google-profiel naast de kassa.",
                     prompt_tokens=700, completion_tokens=40))
    llm = ModelSettings(api_key="test-key", base_url=ai.base_url, timeout_seconds=5)
    async with BotAPIEmulator() as emulator:
        configured = replace(settings, llm=llm, telegram_token=emulator.token,
                             telegram_api_base_url=emulator.base_url)
        app = await build(configured)
        try:
            async with TelegramBot(configured, app):
                messages = await onboard(emulator)
                for number in range(1, 27):
                    question = messages[-1]
                    press(emulator, question,
                          question["reply_markup"]["inline_keyboard"][0][0]["text"])
                    messages = await settle(emulator, asks(f"Vraag {number + 1} van 26")
                                            if number < 26 else says("Typ /results"))
                emulator.user_sends_text(CHAT, "Hoe krijg ik meer Google-reviews?")
                messages = await settle(emulator, says("🤖 AI-antwoord"))
                answer = messages[-1]
                assert answer["text"] == ("🤖 AI-antwoord\n\nZet een QR-kaartje naar je "
                                          "Google-profiel naast de kassa.")
                assert says("Goed om te weten: je vragen beantwoordt een AI")(messages)
                assert (CHAT, "typing") in emulator.chat_actions
                assert ai.requests[0]["messages"][-1]["content"] == (
                    "Hoe krijg ik meer Google-reviews?")
                press(emulator, answer, "💬 Spreek met een coach")
                await settle(emulator, says("Doorgegeven! Een coach van KERNpunt"))
        finally:
            await app.close()
        refused = [e for e in emulator.errors if not e.get("injected")]
        assert refused == []
        assert emulator.unanswered_callbacks() == []
