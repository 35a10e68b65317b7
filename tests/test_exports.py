"""Exports: files read back (csv, json, openpyxl) and compared with the database; the filters;
pseudonymization; /export for admins only; every export in the audit trail; the command
line's export and audit listing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from recording import CHAT, handle, inbound, recorder, say, texts_of

from bot import cli
from bot import exports as cli_exports
from bot.app import App, build
from bot.config import Settings
from flows.loader import parse_flow
from flows.messages import Outbound, Reply
from flows.texts import Texts
from handlers.admin import AdminDesk
from handlers.export_files import ExportRequest, produce
from handlers.export_tables import TABLES, Pseudonyms
from handlers.inbound import Inbound
from handlers.turn import Turn
from storage import audit, roles, shopkeepers
from storage.exports import Filters
from storage.tables import FLOW_SNAPSHOT, RESULT, RUN, SHOPKEEPER, Role

KEY = "a-test-key-that-is-long-enough"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    recorder(app)
    async with app.db.transaction() as tx:
        admin, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="admin",
                                                    language="nl")
        await roles.grant(tx, shopkeeper_id=admin.id, role=Role.ADMIN, by="test")
    yield app
    await app.close()


async def join(app: App, user: str, municipality: str, shop: str = "Bakkerij Dewitte") -> None:
    await say(app, "/start", user)
    for answer in ("Nederlands", "ja", shop, municipality, "voeding", "2"):
        await say(app, answer, user)


async def finish_check(app: App, user: str, answer: str) -> None:
    for _ in range(30):
        if any(m.image is not None for m in await say(app, answer, user)):
            return
    raise AssertionError("the check did not end")


@pytest.fixture
async def people(app: App) -> App:
    """u1 in Kortrijk (two checks: T0 and T1), u2 in Brugge (one check, a typed place)."""
    await join(app, "u1", "Kortrijk")
    await finish_check(app, "u1", "2")
    await say(app, "/restart", "u1")
    await finish_check(app, "u1", "1")
    await join(app, "u2", "Sint-Andries", shop="=HYPERLINK(\"http://x\")")
    await finish_check(app, "u2", "3")
    return app


def export(settings: Settings, what: str, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    produce(settings.database_url, ExportRequest((what,), fmt, **options), out)
    return out.getvalue()


def read_csv(data: bytes, separator: str = ",") -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Belgian Excel needs
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=separator))


async def stored(app: App) -> list[dict[str, Any]]:
    """Every result with its run's answers, flow text and person."""
    async with app.db.transaction() as tx:
        rows = await tx.execute(
            sa.select(RESULT.c.id, RESULT.c.shopkeeper_id, RESULT.c.scores, RESULT.c.overall,
                      RUN.c.state, FLOW_SNAPSHOT.c.source, SHOPKEEPER.c.municipality)
            .join(RUN, RUN.c.id == RESULT.c.run_id)
            .join(FLOW_SNAPSHOT, FLOW_SNAPSHOT.c.key == RESULT.c.flow_key)
            .join(SHOPKEEPER, SHOPKEEPER.c.id == RESULT.c.shopkeeper_id)
            .order_by(RESULT.c.id))
        return [dict(r) for r in rows.mappings()]


async def test_answers_are_every_stored_answer_with_its_question_and_points(
        people: App, settings: Settings) -> None:
    rows = read_csv(await asyncio.to_thread(export, settings, "answers", "csv"))
    results = await stored(people)
    assert len(results) == 3
    expected = []
    for number, result in enumerate(results):
        flow = parse_flow(result["source"], "stored")
        answers = result["state"]["answers"]
        rounds = [r["id"] for r in results if r["shopkeeper_id"] == result["shopkeeper_id"]]
        for node in flow.questions():
            if node.id in answers:
                choice = node.choice(answers[node.id])
                assert choice is not None
                expected.append({
                    "respondent_id": str(result["shopkeeper_id"]),
                    "municipality": result["municipality"],
                    "assessment_id": str(result["id"]),
                    "round": f"T{rounds.index(result['id'])}", "theme": node.theme,
                    "question_id": node.id, "question_nl": node.text["nl"],
                    "answer_id": choice.id, "answer_nl": choice.label["nl"],
                    "points": "" if choice.score is None else str(choice.score)})
        assert number < 3
    assert [{k: row[k] for k in expected[0]} for row in rows] == expected
    assert {row["shop_type"] for row in rows} == {"food"}
    assert {(row["municipality"], row["arrondissement"]) for row in rows} == {
        ("Kortrijk", "Kortrijk"), ("Brugge", "Brugge")}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", row["answered_at"])
               for row in rows)


async def test_assessments_have_scores_levels_and_the_change_since_the_last(
        people: App, settings: Settings) -> None:
    rows = read_csv(await asyncio.to_thread(export, settings, "assessments", "csv"))
    results = await stored(people)
    assert [row["assessment_id"] for row in rows] == [str(r["id"]) for r in results]
    first, second, other = rows
    t0, t1, _ = results
    assert (first["round"], second["round"], other["round"]) == ("T0", "T1", "T0")
    for theme, score in t1["scores"].items():
        assert second[f"score_{theme}"] == str(score)
        assert second[f"change_{theme}"] == str(score - t0["scores"][theme])
        assert first[f"change_{theme}"] == ""
    assert second["overall"] == str(t1["overall"])
    assert second["change_overall"] == str(t1["overall"] - t0["overall"])
    levels = {"Aan de start", "Op weg", "Goed bezig", "Voorloper"}
    assert {row["level"] for row in rows} <= levels
    assert all(row[f"level_{t}"] in levels for row in rows for t in t0["scores"])


async def test_filters_pick_days_and_a_municipality(people: App, settings: Settings) -> None:
    results = await stored(people)
    async with people.db.transaction() as tx:  # the first check, a month ago
        await tx.execute(sa.update(RESULT).where(RESULT.c.id == results[0]["id"])
                         .values(created_at=datetime.now(UTC) - timedelta(days=30)))
    recent = Filters(since=datetime.now(UTC) - timedelta(days=1))
    old = Filters(until=datetime.now(UTC) - timedelta(days=1))
    kortrijk = Filters(municipality="Kortrijk")

    def ids(filters: Filters) -> list[str]:
        data = export(settings, "assessments", "csv", filters=filters)
        return [row["assessment_id"] for row in read_csv(data)]

    everything = [str(r["id"]) for r in results]
    assert await asyncio.to_thread(ids, recent) == everything[1:]
    assert await asyncio.to_thread(ids, old) == everything[:1]
    assert await asyncio.to_thread(ids, kortrijk) == everything[:2]
    answers = read_csv(await asyncio.to_thread(
        export, settings, "answers", "csv", filters=Filters(municipality="Brugge")))
    assert answers and {row["assessment_id"] for row in answers} == {everything[2]}
    # The round counts every check of the person, whatever the filter left out.
    rounds = read_csv(await asyncio.to_thread(export, settings, "assessments", "csv",
                                              filters=recent))
    assert [row["round"] for row in rounds] == ["T1", "T0"]


async def test_users_show_profile_consent_status_and_guard_against_formulas(
        people: App, settings: Settings) -> None:
    await say(people, "/stop", "u2")
    rows = {row["chat"]: row for row in read_csv(await asyncio.to_thread(
        export, settings, "users", "csv", separator=";"), separator=";")}
    u1, u2 = rows[f"{CHAT}:u1"], rows[f"{CHAT}:u2"]
    assert (u1["status"], u2["status"]) == ("active", "opted_out")
    assert u1["shop_name"] == "Bakkerij Dewitte" and u1["municipality"] == "Kortrijk"
    assert u2["shop_name"] == "'=HYPERLINK(\"http://x\")"  # shown as text, never run
    assert u2["municipality_typed"] == "Sint-Andries" and u2["arrondissement"] == "Brugge"
    assert u1["consent_at"] and u1["privacy_notice"] and u1["last_activity"]


async def test_pseudonymized_exports_hold_no_name_chat_id_or_free_text(
        people: App, settings: Settings) -> None:
    async with people.db.transaction() as tx:
        ids = [r for (r,) in await tx.execute(sa.select(SHOPKEEPER.c.id))]
    pseudonyms = Pseudonyms(KEY.encode())
    files = {what: await asyncio.to_thread(export, settings, what, fmt, pseudonyms=pseudonyms)
             for what in TABLES for fmt in ("csv",)}
    files["xlsx"] = await asyncio.to_thread(_all_xlsx, settings, pseudonyms)
    codes = set()
    for what, data in files.items():
        text = data.decode("utf-8", errors="replace") if what != "xlsx" else _xlsx_text(data)
        for secret in ("Bakkerij", "HYPERLINK", "Sint-Andries", f"{CHAT}:", "u1", "u2",
                       "admin"):
            assert secret not in text, (what, secret)
        if what == "answers":
            codes = {row["respondent_id"] for row in read_csv(data)}
    assert codes and all(re.fullmatch(r"[0-9a-f]{20}", code) for code in codes)
    assert not codes & {str(i) for i in ids}
    users = {row["respondent_id"] for row in read_csv(files["users"])}
    assert codes <= users  # the same person has the same code in every table
    other = read_csv(await asyncio.to_thread(export, settings, "answers", "csv",
                                             pseudonyms=Pseudonyms(b"another-key-entirely")))
    assert not codes & {row["respondent_id"] for row in other}


def _all_xlsx(settings: Settings, pseudonyms: Pseudonyms | None = None) -> bytes:
    out = io.BytesIO()
    produce(settings.database_url, ExportRequest(tuple(TABLES), "xlsx",
                                                 pseudonyms=pseudonyms), out)
    return out.getvalue()


def _xlsx_text(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return "\n".join(str(cell) for sheet in book for row in sheet.iter_rows(values_only=True)
                     for cell in row)


async def test_xlsx_has_a_sheet_per_table_typed_cells_and_a_dictionary(
        people: App, settings: Settings) -> None:
    data = await asyncio.to_thread(_all_xlsx, settings)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == [*TABLES, "dictionary"]
    answers = read_csv(await asyncio.to_thread(export, settings, "answers", "csv"))
    sheet = book["answers"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:M{len(answers) + 1}"
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert list(header) == list(answers[0])
    assert len(rows) == len(answers)
    for row, line in zip(rows, answers, strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["respondent_id"] == int(line["respondent_id"])
        assert isinstance(cells["answered_at"], datetime)
        assert cells["answered_at"].isoformat() == line["answered_at"][:19]
        assert cells["points"] == (float(line["points"]) if line["points"] else None)
        assert cells["question_nl"] == line["question_nl"]
    explained = {(t, c) for t, c, *_ in book["dictionary"].iter_rows(min_row=2,
                                                                      values_only=True) if c}
    for name in TABLES:
        columns = next(book[name].iter_rows(max_row=1, values_only=True))
        assert {(name, c) for c in columns} <= explained, name
    assert all(d and e for _, c, _, d, e in book["dictionary"].iter_rows(
        min_row=2, values_only=True) if c)


@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice is not installed (apt-get install "
                           "libreoffice-calc-nogui): the XLSX is read by openpyxl only")
async def test_xlsx_opens_in_libreoffice_calc_with_the_csvs_values(
        people: App, settings: Settings, tmp_path: Path) -> None:
    """What an admin opens in a spreadsheet: LibreOffice Calc reads every sheet, and the
    answers there are the CSV export's, dates as dates and numbers as numbers."""
    book = tmp_path / "export.xlsx"
    book.write_bytes(await asyncio.to_thread(_all_xlsx, settings))
    # Every sheet to CSV (token 12 = -1), comma-separated UTF-8, values as formatted.
    done = await asyncio.to_thread(subprocess.run, [
        "soffice", f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--headless",
        "--convert-to", 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,'
        "false,-1", "--outdir", str(tmp_path / "out"), str(book)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sheets = {path.stem.removeprefix("export-"): path
              for path in (tmp_path / "out").glob("*.csv")}
    assert set(sheets) == {*TABLES, "dictionary"}
    opened = list(csv.DictReader(io.StringIO(sheets["answers"].read_text(encoding="utf-8"))))
    answers = read_csv(await asyncio.to_thread(export, settings, "answers", "csv"))
    assert len(opened) == len(answers) > 0
    for cell, line in zip(opened, answers, strict=True):
        assert cell.keys() == line.keys()
        for column, value in line.items():
            if column == "answered_at":  # a date cell, shown in local time as written
                assert cell[column] == value[:19].replace("T", " ")
            elif column == "points" and value:
                assert float(cell[column]) == float(value)
            else:
                assert cell[column] == value, column


async def test_jsonl_is_one_object_per_row(people: App, settings: Settings) -> None:
    lines = (await asyncio.to_thread(export, settings, "assessments", "jsonl")).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["assessment_id"] for r in rows] == [r["id"] for r in await stored(people)]
    assert isinstance(rows[0]["overall"], int) and rows[0]["change_overall"] is None


async def test_only_admins_can_export(people: App, texts: Texts) -> None:
    unknown = texts.get("nl", "unknown_command", command="export")
    assert texts_of(await say(people, "/export", "u1")) == unknown
    async with people.db.transaction() as tx:
        coach = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u2")
        assert coach is not None
        await roles.grant(tx, shopkeeper_id=coach.id, role=Role.COACH, by="test")
    assert texts_of(await say(people, "/export answers csv", "u2")) == unknown
    [asked] = await say(people, "/export", "admin")
    assert asked.text == texts.get("nl", "export_what")
    assert [b.id for b in asked.buttons] == list(TABLES)
    async with people.db.transaction() as tx:
        assert await exported(tx) == []


async def exported(tx: Any) -> list[audit.AuditRecord]:
    """The audit trail's exports (granting the admin role is in it too)."""
    return [e for e in await audit.entries(tx) if e.action == "export"]


def desk(app: App) -> AdminDesk:
    admin = app.dispatcher.desks[Role.ADMIN]
    assert isinstance(admin, AdminDesk)
    return admin


async def chat(app: App, message: Inbound) -> list[Outbound]:
    """What reached the sender of ``message``: the turn's answer, then what the work after
    the turn (the export) queued."""
    channel = recorder(app)
    before = len(channel.to(message.external_id))
    await app.dispatcher.handle(message)
    await app.sender.poll()
    return channel.to(message.external_id)[before:]


async def test_an_admin_gets_the_file_and_the_export_is_audited(
        people: App, texts: Texts) -> None:
    started, sent = await chat(people, inbound("/export answers csv", "admin"))
    assert started.text == texts.get("nl", "export_started", table="Antwoorden")
    assert sent.document is not None
    assert re.fullmatch(r"kiss-answers-\d{8}-\d{4}\.csv", sent.document.name)
    assert sent.document.content_type == "text/csv"
    assert "Antwoorden:" in sent.text and "persoonsgegevens" in sent.text

    async with people.db.transaction() as tx:  # the buttons, one tap after the other
        admin = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="admin")
        turn = Turn(tx, admin, None, "nl", roles=frozenset({Role.ADMIN}))
        assert desk(people).owns("export") and desk(people).owns("export.users")
        [question] = await desk(people).press(turn, Reply(choice="users", ref="export"))
        assert question.ref == "export.users"
        assert [b.id for b in question.buttons] == ["xlsx", "csv", "jsonl"]
        [coming] = await desk(people).press(turn, Reply(choice="xlsx", ref=question.ref))
        assert coming.document is None and len(turn.afterwards) == 1
        assert len(await exported(tx)) == 1  # the xlsx is not made yet, nor audited
    await turn.afterwards[0]()  # after the commit, as the dispatcher runs it
    await people.sender.poll()
    file = recorder(people).to("admin")[-1]
    assert file.document is not None and file.document.name.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(file.document.data))
    assert book.sheetnames == ["users", "dictionary"]
    assert book["users"].max_row == 1 + 3  # the admin and the two shopkeepers

    async with people.db.transaction() as tx:
        done = await exported(tx)
    assert [(e.actor, e.action, e.detail["what"], e.detail["format"], e.detail["via"])
            for e in done] == [(f"{CHAT}:admin", "export", ["answers"], "csv", "chat"),
                               (f"{CHAT}:admin", "export", ["users"], "xlsx", "chat")]
    assert done[1].detail["rows"] == 3 and done[1].detail["pseudonymized"] is False


async def test_the_buttons_go_through_the_dispatcher_for_admins_only(people: App) -> None:
    [asked] = await say(people, "/export", "admin")
    [fmt] = await handle(people, Inbound(CHAT, "admin", press="p1",
                                         reply=Reply(choice="users", ref=asked.ref)))
    assert fmt.ref == "export.users"
    _, sent = await chat(people, Inbound(CHAT, "admin", press="p2",
                                         reply=Reply(choice="csv", ref=fmt.ref)))
    assert sent.document is not None and sent.document.data.startswith(b"\xef\xbb\xbf")
    [stale] = await chat(people, Inbound(CHAT, "u2", press="p3",
                                         reply=Reply(choice="csv", ref=fmt.ref)))
    assert stale.document is None and "oudere vraag" in stale.text


async def test_other_turns_go_on_while_a_chat_export_is_made(
        people: App, texts: Texts) -> None:
    """Regression: the export ran inside the admin's turn and, on SQLite, held the bot's
    one connection until the file was made. Now it is made after the turn, on its own
    connection: here it is held mid-file until another person's turn has completed."""
    midway, go_on = threading.Event(), threading.Event()

    def slow(url: str, request: ExportRequest, out: Any) -> int:
        def progress(done: int, total: int) -> None:
            midway.set()  # rows are being read and written
            if not go_on.wait(timeout=30):
                raise AssertionError("the other turn never completed")

        return produce(url, request, out, progress)

    exports = desk(people).exports
    exports.make = slow
    exporting = asyncio.create_task(chat(people, inbound("/export answers xlsx", "admin")))
    assert await asyncio.to_thread(midway.wait, 30)
    [answer] = await asyncio.wait_for(say(people, "/help", "u2"), timeout=30)
    assert "/results" in answer.text
    assert not exporting.done()  # the other turn completed while the export was running
    async with people.db.transaction() as tx:  # and the database is free for writes
        assert await exported(tx) == []
    go_on.set()
    started, sent = await exporting
    assert started.text == texts.get("nl", "export_started", table="Antwoorden")
    assert sent.document is not None and sent.document.name.endswith(".xlsx")
    async with people.db.transaction() as tx:
        [entry] = await exported(tx)
    assert entry.detail["rows"] > 0


async def test_a_failed_chat_export_is_said_kindly_and_not_audited(
        people: App, texts: Texts) -> None:
    def broken(url: str, request: ExportRequest, out: Any) -> int:
        raise OSError("disk full")

    desk(people).exports.make = broken
    _, failed = await chat(people, inbound("/export users csv", "admin"))
    assert failed.text == texts.get("nl", "export_failed") and failed.document is None
    async with people.db.transaction() as tx:
        assert await exported(tx) == []


async def test_the_command_line_exports_audits_and_lists_the_trail(
        people: App, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KISS_DATABASE_URL", settings.database_url)
    monkeypatch.setattr(cli_exports, "NICENESS", 0)  # the test process keeps its priority
    monkeypatch.delenv(cli_exports.KEY_VARIABLE, raising=False)
    target = tmp_path / "out.csv"

    def run(*argv: str) -> int:
        return cli.main(list(argv))

    refused = await asyncio.to_thread(run, "export", "--what", "users", "--pseudonymize")
    assert refused == 2
    assert cli_exports.KEY_VARIABLE in capsys.readouterr().err
    monkeypatch.setenv(cli_exports.KEY_VARIABLE, KEY)
    assert await asyncio.to_thread(
        run, "export", "--what", "answers", "--format", "csv", "--output", str(target),
        "--municipality", "kortrijk", "--since", "2020-01-01", "--until", "2099-12-31",
        "--pseudonymize", "--separator", ";") == 0
    rows = read_csv(target.read_bytes(), separator=";")
    assert rows and {row["municipality"] for row in rows} == {"Kortrijk"}
    assert not list(tmp_path.glob("*.partial"))

    assert await asyncio.to_thread(run, "audit", "--since", "2020-01-01") == 0
    listed = capsys.readouterr().out
    assert re.search(r"cli:\S+\s+export\s+what=answers\s+format=csv\s+since=\S+\s+until=\S+"
                     r"\s+municipality=Kortrijk\s+pseudonymized=True\s+rows=\d+\s+via=cli",
                     listed), listed
    async with people.db.transaction() as tx:
        [entry] = await exported(tx)
    assert entry.detail["rows"] == len(rows) and entry.actor.startswith("cli:")


async def test_a_refused_export_leaves_no_audit_entry(
        people: App, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KISS_DATABASE_URL", settings.database_url)
    with pytest.raises(SystemExit):  # argparse: an unknown table
        await asyncio.to_thread(cli.main, ["export", "--what", "passwords"])
    with pytest.raises(SystemExit):
        await asyncio.to_thread(cli.main, ["export", "--what", "users", "--municipality",
                                           "Moeskroen"])
    async with people.db.transaction() as tx:
        assert await exported(tx) == []
