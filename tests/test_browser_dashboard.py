"""The dashboard in a real browser: Playwright driving Debian's Chromium against the bot's
web server, with the bot on Telegram (the Bot API emulator) at the same time.

One journey, one browser: an admin asks for a link in chat and logs in with it, reads the
overview, builds an audience and sees the count change, sends a broadcast that the
shopkeepers' chats receive, and downloads an export. Every page is saved as a screenshot
under ``tests/artifacts/`` and no page may log a console error.

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it),
or ``KISS_CHROMIUM``; without it these tests skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dashboard_site import add_shop
from telegram_emulator import BotAPIEmulator

from bot.app import App
from bot.config import Settings, public_url
from bot.dashboard.site import dashboard_app
from bot.telegram import TelegramBot
from bot.web import WebServer
from storage import audit, roles, shopkeepers
from storage.tables import Role

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = os.environ.get("KISS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ADMIN = 4242
#: Shopkeepers' chats: five in Kortrijk, five in Brugge.
KORTRIJK = [7001, 7002, 7003, 7004, 7005]
BRUGGE = [7101, 7102, 7103, 7104, 7105]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set KISS_CHROMIUM)")


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite only: the browser checks the pages, the storage tests check PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'kiss.sqlite3'}"


@pytest.fixture
def settings(settings: Settings, unused_tcp_port: int) -> Settings:
    return replace(settings, http_listen=f"127.0.0.1:{unused_tcp_port}")


async def _chat(emu: BotAPIEmulator, chat: int, pattern: str) -> str:
    """The first message to ``chat`` matching ``pattern``, waiting for the bot (events)."""
    async with asyncio.timeout(15):
        while True:
            for message in emu.messages_to(chat):
                if re.search(pattern, message.get("text") or message.get("caption") or ""):
                    return str(message.get("text") or message.get("caption"))
            done = len([r for r in emu.sent if r["chat_id"] == chat])
            await emu.wait_for_sent(done + 1, chat_id=chat)


async def test_an_admin_works_through_the_dashboard_in_chromium(
        app: App, settings: Settings, emulator: BotAPIEmulator) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with app.db.transaction() as tx:
        admin, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                    external_id=str(ADMIN), language="nl")
        await roles.grant(tx, shopkeeper_id=admin.id, role=Role.ADMIN, by="test")
        for chat in KORTRIJK + BRUGGE:
            await add_shop(tx, str(chat), "Kortrijk" if chat in KORTRIJK else "Brugge",
                           "food", [40 + chat % 7 * 5])
    web = WebServer(settings.http_listen)
    web.mount("/dashboard", dashboard_app(app, public_url=public_url(settings)))
    telegram = replace(settings, telegram_token=emulator.token,
                       telegram_api_base_url=emulator.base_url)
    async with TelegramBot(telegram, app):
        await web.start()
        try:
            for chat in KORTRIJK + BRUGGE:  # each shopkeeper has a chat with the bot
                emulator.user_sends_text(chat, "/help")
            emulator.user_sends_text(ADMIN, "/dashboard")
            said = await _chat(emulator, ADMIN, r"/dashboard/login/")
            link = re.search(r"http://\S+/dashboard/login/[\w-]+", said)
            assert link is not None and link[0].startswith(public_url(settings))
            for chat in KORTRIJK + BRUGGE:
                await _chat(emulator, chat, r"/start")
            await _journey(app, emulator, link[0])
        finally:
            await web.stop()
    async with app.db.transaction() as tx:
        actions = [e.action for e in await audit.entries(tx) if e.actor == f"telegram:{ADMIN}"]
    assert {"dashboard_login", "stats", "export"} <= set(actions)


async def _journey(app: App, emulator: BotAPIEmulator, link: str) -> None:
    problems: list[str] = []
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM,
                                               args=["--no-sandbox"])
        try:
            page = await browser.new_page(accept_downloads=True)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            expect: Any = playwright.expect

            await page.goto(link)
            await page.screenshot(path=ARTIFACTS / "dashboard-login.png", full_page=True)
            await page.click("#login")
            await expect(page.locator("h1")).to_have_text("Overzicht")
            await expect(page.locator("#table-municipality")).to_contain_text("Kortrijk")
            await page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)

            await page.goto(link.split("/dashboard/")[0] + "/dashboard/progress")
            await page.screenshot(path=ARTIFACTS / "dashboard-progress.png", full_page=True)

            await page.click("text=Berichten")
            await page.click("text=Nieuw bericht")
            count = page.locator("#recipient-count")
            await expect(count).to_have_text("10")
            await page.select_option("#seg-municipality", "Kortrijk")
            await expect(count).to_have_text("5")  # the count followed the audience
            await page.fill("#text_nl", "<b>Koopavond</b> in Kortrijk, vrijdag tot 21u!")
            await page.check("input[name=urgent]")
            await page.screenshot(path=ARTIFACTS / "dashboard-compose.png", full_page=True)
            await page.click("text=Voorbeeld bekijken")
            await expect(page.locator("#preview-count")).to_contain_text("5 winkeliers")
            await page.screenshot(path=ARTIFACTS / "dashboard-preview.png", full_page=True)
            await page.click("#send")
            await expect(page.locator("h1")).to_have_text("Berichten")
            await app.broadcasts.tick()  # what the app's scheduler does every few seconds
            for chat in KORTRIJK:
                await _chat(emulator, chat, r"Koopavond")
            assert not any("Koopavond" in (m.get("text") or "")
                           for chat in BRUGGE for m in emulator.messages_to(chat))
            await page.reload()
            await page.screenshot(path=ARTIFACTS / "dashboard-broadcasts.png", full_page=True)

            await page.click("text=Vragen en contacten")
            await page.screenshot(path=ARTIFACTS / "dashboard-tickets.png", full_page=True)
            await page.click("text=Exporteren")
            await page.check("input[name=what][value=users]")
            await page.check("input[name=format][value=csv]")
            await page.screenshot(path=ARTIFACTS / "dashboard-exports.png", full_page=True)
            async with page.expect_download() as started:
                await page.click("#download")
            download = await started.value
            saved = ARTIFACTS / download.suggested_filename
            await download.save_as(saved)
            lines = saved.read_text(encoding="utf-8-sig").splitlines()
            assert len(lines) == 12  # a header, the ten shops and the admin
            assert sum("Kortrijk" in line for line in lines) == 5
            await page.click("text=Coaches en admins")
            await page.screenshot(path=ARTIFACTS / "dashboard-roles.png", full_page=True)
            await page.click("text=Logboek")
            await expect(page.locator("#audit")).to_contain_text("export")
            await page.screenshot(path=ARTIFACTS / "dashboard-audit.png", full_page=True)
        finally:
            await browser.close()
    assert problems == [], problems
