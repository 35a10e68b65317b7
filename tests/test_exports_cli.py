"""The command line for admins: ``kiss-coach stats --llm``, and a CLI that imports only
what the command needs (an export must not wait seconds for the bot, the charts and the
language model to load)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from recording import CHAT

from bot.cli import main
from storage import questions, shopkeepers
from storage.database import Database
from storage.tables import QuestionSource, utcnow

#: What only the running bot needs: the Telegram library, the language model's client,
#: the charts, the scheduler and the whole app.
HEAVY = ("telegram", "openai", "matplotlib", "apscheduler", "bot.app", "bot.console",
         "handlers.dispatcher", "handlers.stats")


def test_stats_llm_prints_this_months_questions_tokens_and_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'usage.sqlite3'}"

    async def asked_and_answered() -> None:
        db = Database(url)
        await db.upgrade()
        async with db.transaction() as tx:
            person, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="u1",
                                                         language="nl")
            for source, tokens in ((QuestionSource.AI, (300, 45)),
                                   (QuestionSource.TIPS, (0, 0)),
                                   (QuestionSource.TIPS, (0, 0))):
                asked = await questions.ask(tx, shopkeeper_id=person.id, text="?",
                                            now=utcnow(), ai_notice=False)
                await questions.answer(tx, question_id=asked, text="!", source=source,
                                       now=utcnow(), prompt_tokens=tokens[0],
                                       completion_tokens=tokens[1])
        await db.close()

    asyncio.run(asked_and_answered())
    monkeypatch.setenv("KISS_DATABASE_URL", url)
    monkeypatch.setenv("KISS_LLM_MONTHLY_TOKENS", "10000")
    assert main(["stats", "--llm"]) == 0
    out = capsys.readouterr().out
    assert "questions        3 (1 by the model, 2 from the tips, 0 asked for a coach)" in out
    assert "tokens           345 (300 prompt, 45 completion)" in out
    assert "budget left      9655 of 10000" in out
    assert main(["llm", "usage"]) == 0
    assert capsys.readouterr().out == out  # the same figures as `llm usage`


def test_the_command_line_loads_none_of_the_bot_for_an_export() -> None:
    """Regression: importing ``bot.cli`` took 5-7 s on a loaded machine (it imported the
    whole bot), most of a CSV export's time."""
    probe = ("import json, sys, bot.cli, bot.exports; "
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout) == []
