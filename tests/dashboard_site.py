"""The dashboard under test: mounted on the bot's real web server (:class:`bot.web.WebServer`)
and driven with aiohttp's test client; people with roles, shops with results, and a
browser per person (its own cookie jar)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from recording import Clock
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.app import App
from bot.dashboard.site import dashboard_app
from bot.web import WebServer
from storage import dashboard, roles, shopkeepers
from storage.tables import IDENTITY, RESULT, RUN, SHOPKEEPER, Role, utcnow

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")
#: (municipality, shop type, overall score of each check). Kortrijk's six did it twice;
#: Damme's two and Mesen's one are too few to be shown on their own.
SHOPS = [
    *(("Kortrijk", "food", [v - 20, v]) for v in (40, 50, 60)),
    *(("Kortrijk", "fashion", [v - 20, v]) for v in (70, 80, 90)),
    *(("Waregem", "fashion", [v]) for v in (20, 30, 40, 50, 60)),
    *(("Brugge", "food", [v]) for v in (10, 20, 30, 40, 50)),
    *(("Damme", "food", [v]) for v in (70, 80)),
    ("Mesen", "garden", [100]),
]
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class Site:
    """The dashboard at ``/dashboard`` of one web server, on the app's database."""

    app: App
    server: TestServer
    clock: Clock
    clients: list[TestClient] = field(default_factory=list)

    async def browser(self) -> TestClient:
        """A new browser: its own cookies (aiohttp keeps none for an IP address unless
        told to: ``unsafe``)."""
        client = TestClient(self.server, cookie_jar=CookieJar(unsafe=True))
        await client.start_server()
        self.clients.append(client)
        return client

    async def person(self, name: str, *role_names: Role, language: str = "nl") -> int:
        async with self.app.db.transaction() as tx:
            found, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                        external_id=name, language=language)
            for role in role_names:
                await roles.grant(tx, shopkeeper_id=found.id, role=role, by="test")
        return found.id

    async def link(self, person: int) -> str:
        """A login token for ``person``, made now."""
        async with self.app.db.transaction() as tx:
            return await dashboard.create_login(tx, shopkeeper_id=person, now=self.clock())

    async def logged_in(self, person: int) -> TestClient:
        """A browser with a session of ``person`` (through the login link)."""
        client = await self.browser()
        answer = await client.post("/dashboard/login", data={"token": await self.link(person)},
                                   allow_redirects=False)
        assert answer.status == 303, await answer.text()
        return client


async def csrf_of(client: TestClient, path: str = "/dashboard/") -> str:
    """The CSRF token the forms of a page carry."""
    page = await (await client.get(path)).text()
    found = _CSRF.search(page)
    assert found is not None, page[:500]
    return found[1]


async def open_site(app: App, clock: Clock) -> AsyncIterator[Site]:
    web = WebServer("127.0.0.1:0")
    web.mount("/dashboard", dashboard_app(app, public_url="http://127.0.0.1", clock=clock))
    server = TestServer(web.root)
    site = Site(app, server, clock)
    try:
        yield site
    finally:
        for client in site.clients:
            await client.close()
        await server.close()


async def add_shop(tx: AsyncConnection, name: str, municipality: str | None,
                   shop_type: str | None, checks: list[int], *,
                   shop_name: str | None = None) -> int:
    """A consented shop with a result per check (each theme at the overall score)."""
    now = utcnow()
    person = (await tx.execute(sa.insert(SHOPKEEPER).values(
        language="nl", language_chosen=True, consent_at=now, consent_version="test",
        shop_name=shop_name or f"Winkel {name}", municipality=municipality,
        shop_type=shop_type, team_size="solo", created_at=now, updated_at=now)
        .returning(SHOPKEEPER.c.id))).scalar_one()
    await tx.execute(sa.insert(IDENTITY).values(channel="telegram", external_id=name,
                                                shopkeeper_id=person, created_at=now))
    for round_, value in enumerate(checks):
        at = now - timedelta(weeks=12 * (len(checks) - round_))
        run = (await tx.execute(sa.insert(RUN).values(
            shopkeeper_id=person, flow_id="assessment", flow_key="assessment@test",
            status="completed", state={}, started_at=at, updated_at=at, completed_at=at)
            .returning(RUN.c.id))).scalar_one()
        await tx.execute(sa.insert(RESULT).values(
            shopkeeper_id=person, run_id=run, flow_key="assessment@test",
            scores=dict.fromkeys(THEMES, value), overall=value, focus=["digitalisering"],
            created_at=at))
    return int(person)


async def seed(app: App, shops: list[tuple[str, str, list[int]]] = SHOPS) -> list[int]:
    async with app.db.transaction() as tx:
        return [await add_shop(tx, f"shop{number}", municipality, shop_type, checks)
                for number, (municipality, shop_type, checks) in enumerate(shops)]
