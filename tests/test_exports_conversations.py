"""Exports of tickets (a shopkeeper and a human coach) and of questions to the AI coach:
read back and compared with the database; pseudonymized, they keep no free text, name or
id; the XLSX explains their columns; chat and command line, audited, admins only."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from recording import (
    CHAT,
    TUESDAY,
    Clock,
    inbound,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    say,
)
from test_tickets import act, as_coach, claim, team

from bot import cli
from bot import exports as cli_exports
from bot.app import App
from bot.config import Settings
from flows.texts import Texts
from handlers.export_files import ExportRequest, produce
from handlers.export_tables import Pseudonyms
from storage import audit, roles, shopkeepers
from storage.tables import QUESTION, TICKET, TICKET_MESSAGE, Role

KEY = "a-test-key-that-is-long-enough"
#: Everything typed in the conversations below: none of it may be in a pseudonymized file.
TYPED = ("Google-reviews", "We hebben al 12 reviews", "QR-code", "etalage", "Bo", "An")


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


@pytest.fixture
async def talked(app: App) -> App:
    """A shopkeeper's question to the AI coach (answered from the tips: no key here), then
    a ticket claimed by coach An with a message either way; a second, unclaimed ticket of
    another shopkeeper without messages."""
    await team(app)
    await act(app, inbound("/ask Hoe pak ik mijn etalage aan?", "shop"))
    await say(app, "/coach Hoe krijg ik meer Google-reviews?", "shop")
    await claim(app, "coach-an", "An", 1)
    await say(app, "We hebben al 12 reviews", "shop")
    await as_coach(app, "coach-an", "An", "/reply 1 Zet een QR-code aan de kassa.")
    await say(app, "/coach", "coach-bo")  # a coach is a shopkeeper too
    async with app.db.transaction() as tx:
        admin, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="admin",
                                                    language="nl")
        await roles.grant(tx, shopkeeper_id=admin.id, role=Role.ADMIN, by="test")
    return app


def export(settings: Settings, what: str, fmt: str = "csv", **options: Any) -> bytes:
    out = io.BytesIO()
    produce(settings.database_url, ExportRequest((what,), fmt, **options), out)
    return out.getvalue()


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


async def test_tickets_are_the_request_then_each_message_either_way(
        talked: App, settings: Settings) -> None:
    rows = read_csv(await asyncio.to_thread(export, settings, "tickets"))
    async with talked.db.transaction() as tx:
        stored = (await tx.execute(sa.select(TICKET).order_by(TICKET.c.id))).mappings().all()
        said = (await tx.execute(sa.select(TICKET_MESSAGE).order_by(TICKET_MESSAGE.c.id))
                ).mappings().all()
    expected = []
    for ticket in stored:
        expected.append((str(ticket["id"]), "0", "shopkeeper", ticket["question"]))
        expected += [(str(ticket["id"]), str(n), "coach" if m["from_coach"] else "shopkeeper",
                      m["text"]) for n, m in enumerate(
                          (m for m in said if m["ticket_id"] == ticket["id"]), start=1)]
    assert [(r["ticket_id"], r["message"], r["from"], r["text"]) for r in rows] == expected
    assert expected[:3] == [("1", "0", "shopkeeper", "Hoe krijg ik meer Google-reviews?"),
                            ("1", "1", "shopkeeper", "We hebben al 12 reviews"),
                            ("1", "2", "coach", "Zet een QR-code aan de kassa.")]
    first = rows[0]
    assert (first["status"], first["coach_name"], first["municipality"],
            first["arrondissement"]) == ("claimed", "An", "Kortrijk", "Kortrijk")
    assert first["claimed_at"] and not first["closed_at"]
    assert [r["status"] for r in rows if r["ticket_id"] == "2"] == ["open"]  # no messages


async def test_questions_are_one_row_each_with_how_they_were_answered(
        talked: App, settings: Settings) -> None:
    data = await asyncio.to_thread(export, settings, "questions", "jsonl")
    rows = [json.loads(line) for line in data.decode().splitlines()]
    async with talked.db.transaction() as tx:
        stored = (await tx.execute(sa.select(QUESTION))).mappings().all()
    assert [(r["question_id"], r["question"], r["answer"], r["answered_by"], r["status"])
            for r in rows] == [(q["id"], q["text"], q["answer"], q["source"], q["status"])
                               for q in stored]
    assert rows[0]["question"] == "Hoe pak ik mijn etalage aan?"
    assert rows[0]["answered_by"] == "tips" and rows[0]["prompt_tokens"] == 0


async def test_pseudonymized_they_keep_no_text_name_or_id(
        talked: App, settings: Settings) -> None:
    pseudonyms = Pseudonyms(KEY.encode())
    for what in ("tickets", "questions"):
        data = await asyncio.to_thread(export, settings, what, pseudonyms=pseudonyms)
        text = data.decode()
        for secret in (*TYPED, f"{CHAT}:", "coach-an"):
            assert secret not in text, (what, secret)
        rows = read_csv(data)
        assert rows and "text" not in rows[0] and "question" not in rows[0]
        assert all(len(r["respondent_id"]) == 20 for r in rows)
    tickets = read_csv(await asyncio.to_thread(export, settings, "tickets",
                                               pseudonyms=pseudonyms))
    assert {r["coach_id"] for r in tickets if r["ticket_id"]} - {""}  # hashed, still there
    assert "coach_name" not in tickets[0]


async def test_the_workbook_has_their_sheets_and_explains_every_column(
        talked: App, settings: Settings) -> None:
    def both() -> bytes:
        out = io.BytesIO()
        produce(settings.database_url, ExportRequest(("tickets", "questions"), "xlsx"), out)
        return out.getvalue()

    book = openpyxl.load_workbook(io.BytesIO(await asyncio.to_thread(both)))
    assert book.sheetnames == ["tickets", "questions", "dictionary"]
    header = [c.value for c in book["tickets"][1]]
    explained = {(row[0], row[1]) for row in book["dictionary"].iter_rows(min_row=2,
                                                                         values_only=True)}
    assert {("tickets", name) for name in header} <= explained
    assert {("questions", c.value) for c in book["questions"][1]} <= explained
    opened = book["tickets"].cell(row=2, column=header.index("opened_at") + 1).value
    assert opened is not None and opened.year == TUESDAY.year  # a date, not text


async def test_admins_export_them_in_chat_and_on_the_command_line_audited(
        talked: App, settings: Settings, texts: Texts, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = texts.get("nl", "unknown_command", command="export")
    await talked.sender.poll()  # the notices about the tickets are out before
    [refused] = await say(talked, "/export tickets csv", "coach-an")
    assert refused.text == unknown
    started, sent = await act(talked, inbound("/export tickets csv", "admin"))
    assert started.text == texts.get("nl", "export_started", table="Gesprekken met coaches")
    assert sent.document is not None
    assert read_csv(sent.document.data)[0]["text"] == "Hoe krijg ik meer Google-reviews?"

    monkeypatch.setenv("KISS_DATABASE_URL", settings.database_url)
    monkeypatch.setattr(cli_exports, "NICENESS", 0)
    monkeypatch.setenv(cli_exports.KEY_VARIABLE, KEY)
    target = tmp_path / "both.xlsx"
    assert await asyncio.to_thread(cli.main, [
        "export", "--what", "tickets,questions", "--format", "xlsx", "--pseudonymize",
        "--output", str(target)]) == 0
    assert openpyxl.load_workbook(target).sheetnames == ["tickets", "questions", "dictionary"]
    async with talked.db.transaction() as tx:
        done = [(e.actor.split(":")[0], e.detail["what"], e.detail["via"],
                 e.detail["pseudonymized"]) for e in await audit.entries(tx)
                if e.action == "export"]
    assert done == [(CHAT, ["tickets"], "chat", False),
                    ("cli", ["tickets", "questions"], "cli", True)]
