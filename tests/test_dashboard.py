"""The dashboard over HTTP (aiohttp's test client on the bot's real web server): login
links that work once and for ten minutes, the session cookie, 8 hours of inactivity, roles
checked on every route and every request, CSRF, k-anonymity on every aggregate page, and
the audit trail."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from dashboard_site import Site, add_shop, csrf_of, open_site, seed
from recording import Clock, recorder, say, texts_of

from bot.app import App
from storage import audit, broadcasts, dashboard, erasure, roles, shopkeepers
from storage.tables import Role, utcnow


@pytest.fixture
async def site(app: App) -> AsyncIterator[Site]:
    async for opened in open_site(app, Clock(utcnow())):
        yield opened


# -- logging in --------------------------------------------------------------------------


async def test_dashboard_in_chat_gives_a_coach_a_link_and_anyone_else_nothing(
        app: App) -> None:
    async with app.db.transaction() as tx:
        coach, _ = await shopkeepers.find_or_create(tx, channel="test", external_id="c1",
                                                    language="nl")
        await roles.grant(tx, shopkeeper_id=coach.id, role=Role.COACH, by="test")
    recorder(app)
    answer = texts_of(await say(app, "/dashboard", "c1"))
    assert re.search(r"http://127\.0\.0\.1:8080/dashboard/login/[\w-]{43}\b", answer), answer
    assert "10 minuten" in answer
    unknown = texts_of(await say(app, "/nonsense", "s1"))
    assert texts_of(await say(app, "/dashboard", "s1")) == unknown.replace("/nonsense",
                                                                           "/dashboard")


async def test_a_login_link_works_once(site: Site) -> None:
    coach = await site.person("501", Role.COACH)
    token = await site.link(coach)
    browser = await site.browser()
    page = await browser.get(f"/dashboard/login/{token}")  # a link preview uses nothing
    assert page.status == 200 and token in await page.text()
    first = await browser.post("/dashboard/login", data={"token": token},
                               allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/dashboard/"
    assert (await browser.get("/dashboard/")).status == 200
    again = await (await site.browser()).post("/dashboard/login", data={"token": token})
    assert again.status == 403
    assert "al gebruikt" in await again.text()


async def test_a_login_link_expires_after_ten_minutes(site: Site) -> None:
    coach = await site.person("502", Role.COACH)
    fresh, stale = await site.link(coach), await site.link(coach)
    site.clock.now += timedelta(minutes=9, seconds=59)
    assert (await (await site.browser()).post("/dashboard/login",
                                              data={"token": fresh})).status == 200
    site.clock.now += timedelta(seconds=1)
    assert (await (await site.browser()).post("/dashboard/login",
                                              data={"token": stale})).status == 403


async def test_only_a_hash_of_a_token_is_stored(site: Site) -> None:
    token = await site.link(await site.person("503", Role.ADMIN))
    async with site.app.db.transaction() as tx:
        stored = (await tx.exec_driver_sql("SELECT token_hash FROM dashboard_login")).scalar()
    assert stored == dashboard.digest(token) and token not in str(stored)


async def test_someone_without_a_role_gets_no_session(site: Site) -> None:
    shopkeeper = await site.person("504")
    browser = await site.browser()
    answer = await browser.post("/dashboard/login", data={"token": await site.link(shopkeeper)},
                                allow_redirects=False)
    assert answer.status == 403 and "Set-Cookie" not in answer.headers
    assert (await browser.get("/dashboard/")).status == 401


async def test_the_cookie_is_http_only_strict_and_secure_behind_https(app: App) -> None:
    for public, secure in (("http://127.0.0.1", False), ("https://coach.example.be", True)):
        async for site in open_site(app, Clock(utcnow())):
            desk = site.server.app._subapps[0]  # type: ignore[union-attr]
            desk[next(iter(desk))].public_url = public  # the Desk: only its URL differs
            browser = await site.browser()
            answer = await browser.post("/dashboard/login", allow_redirects=False, data={
                "token": await site.link(await site.person(f"505{secure}", Role.COACH))})
            cookie = answer.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Path=/dashboard" in cookie
            assert ("Secure" in cookie) is secure


async def test_a_session_ends_after_eight_hours_without_a_request(site: Site) -> None:
    browser = await site.logged_in(await site.person("506", Role.COACH))
    site.clock.now += timedelta(hours=7, minutes=59)
    assert (await browser.get("/dashboard/broadcasts")).status == 200  # counts as activity
    site.clock.now += timedelta(hours=7, minutes=59)
    assert (await browser.get("/dashboard/broadcasts")).status == 200
    site.clock.now += timedelta(hours=8)
    assert (await browser.get("/dashboard/broadcasts")).status == 401


async def test_a_revoked_role_ends_access_at_the_next_click(site: Site) -> None:
    coach = await site.person("507", Role.COACH)
    browser = await site.logged_in(coach)
    assert (await browser.get("/dashboard/broadcasts")).status == 200
    async with site.app.db.transaction() as tx:
        await roles.revoke(tx, shopkeeper_id=coach, role=Role.COACH, by="test")
    assert (await browser.get("/dashboard/broadcasts")).status == 401


async def test_logging_out_ends_the_session(site: Site) -> None:
    browser = await site.logged_in(await site.person("508", Role.COACH))
    token = await csrf_of(browser)
    out = await browser.post("/dashboard/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await browser.get("/dashboard/")).status == 401


# -- who may open what -------------------------------------------------------------------

#: Every route: (method, path, the role it needs).
ROUTES = [
    ("GET", "/dashboard/", Role.COACH),
    ("GET", "/dashboard/?round=t0", Role.COACH),
    ("GET", "/dashboard/progress", Role.COACH),
    ("GET", "/dashboard/broadcasts", Role.COACH),
    ("GET", "/dashboard/broadcasts/counts", Role.COACH),
    ("GET", "/dashboard/broadcasts/new", Role.COACH),
    ("GET", "/dashboard/broadcasts/reach?municipality=Kortrijk", Role.COACH),
    ("POST", "/dashboard/broadcasts/preview", Role.COACH),
    ("POST", "/dashboard/broadcasts/change", Role.COACH),
    ("POST", "/dashboard/broadcasts", Role.COACH),
    ("POST", "/dashboard/broadcasts/1/cancel", Role.COACH),
    ("GET", "/dashboard/broadcasts/1/delete", Role.COACH),
    ("POST", "/dashboard/broadcasts/1/delete", Role.COACH),
    ("GET", "/dashboard/broadcasts/photo/1", Role.COACH),
    ("GET", "/dashboard/tickets", Role.COACH),
    ("GET", "/dashboard/exports", Role.ADMIN),
    ("GET", "/dashboard/exports/file?what=users&format=csv", Role.ADMIN),
    ("GET", "/dashboard/roles", Role.ADMIN),
    ("POST", "/dashboard/roles", Role.ADMIN),
    ("POST", "/dashboard/roles/invite", Role.ADMIN),
    ("GET", "/dashboard/audit", Role.ADMIN),
]


async def test_every_route_checks_the_role(site: Site) -> None:
    """Nobody logged in: 401; a shopkeeper's session (a role taken away) counts as nobody;
    a coach gets 403 on an admin's page; a coach or an admin gets through (the answer
    may still be a 400 or 404 for a form left empty or a broadcast that does not
    exist)."""
    await seed(site.app)
    stranger = await site.browser()
    former = await site.person("509", Role.COACH)
    shopkeeper = await site.logged_in(former)
    async with site.app.db.transaction() as tx:
        await roles.revoke(tx, shopkeeper_id=former, role=Role.COACH, by="test")
    coach = await site.logged_in(await site.person("510", Role.COACH))
    admin = await site.logged_in(await site.person("511", Role.ADMIN))
    tokens = {id(coach): await csrf_of(coach), id(admin): await csrf_of(admin)}
    for method, path, needed in ROUTES:
        for browser, role in ((stranger, None), (shopkeeper, None), (coach, Role.COACH),
                              (admin, Role.ADMIN)):
            data = {"csrf": tokens.get(id(browser), "")}
            answer = await browser.request(method, path, data=data if method == "POST"
                                           else None, allow_redirects=False)
            if role is None:
                assert answer.status == 401, (method, path)
            elif needed is Role.ADMIN and role is Role.COACH:
                assert answer.status == 403, (method, path)
            else:
                assert answer.status in (200, 303, 400, 404), (method, path, answer.status)


async def test_a_form_without_its_csrf_token_changes_nothing(site: Site) -> None:
    coach = await site.person("512", Role.COACH)
    async with site.app.db.transaction() as tx:
        made = await broadcasts.create(tx, created_by=coach, created_via="test",
                                       texts={"nl": "Hallo"}, segment={}, urgent=False,
                                       send_at=site.clock() + timedelta(days=1),
                                       now=site.clock())
    browser = await site.logged_in(coach)
    for data in ({}, {"csrf": "0" * 64}, {"csrf": await csrf_of(await site.logged_in(
            await site.person("513", Role.COACH)))}):  # another session's token
        answer = await browser.post(f"/dashboard/broadcasts/{made.id}/cancel", data=data)
        assert answer.status == 403
        assert "verlopen" in await answer.text()
    async with site.app.db.transaction() as tx:
        still = await broadcasts.get(tx, broadcast_id=made.id)
    assert still is not None and still.status == "scheduled"
    answer = await browser.post(f"/dashboard/broadcasts/{made.id}/cancel",
                                data={"csrf": await csrf_of(browser)}, allow_redirects=False)
    assert answer.status == 303
    async with site.app.db.transaction() as tx:
        done = await broadcasts.get(tx, broadcast_id=made.id)
    assert done is not None and done.status == "cancelled"


# -- k-anonymity -------------------------------------------------------------------------


async def test_no_aggregate_page_shows_a_group_under_five_shops(site: Site) -> None:
    await seed(site.app)
    browser = await site.logged_in(await site.person("514", Role.COACH))
    for path in ("/dashboard/", "/dashboard/?round=t0", "/dashboard/progress"):
        page = await (await browser.get(path)).text()
        assert "Damme" not in page and "Mesen" not in page, path
        assert "Kortrijk" in page
    overview = await (await browser.get("/dashboard/")).text()
    assert "Overige" in overview
    assert re.search(r"<th scope=\"row\">Kortrijk</th><td>6</td><td>65</td>", overview)
    progress = await (await browser.get("/dashboard/progress")).text()
    assert "Kortrijk (6 zaken): 45 → 65" in progress


async def test_with_fewer_than_five_shops_nothing_is_shown(site: Site) -> None:
    await seed(site.app, [("Kortrijk", "food", [50, 60])] * 4)
    browser = await site.logged_in(await site.person("515", Role.COACH))
    overview = await (await browser.get("/dashboard/")).text()
    assert 'id="too-few"' in overview and "Kortrijk" not in overview
    progress = await (await browser.get("/dashboard/progress")).text()
    assert 'id="too-few"' in progress and "Kortrijk" not in progress


async def test_progress_per_town_is_withheld_when_it_would_reveal_a_small_group(
        site: Site) -> None:
    """Kortrijk: 6 did the check again and 2 only once. Showing Kortrijk's "again" next
    to its overview total would reveal those 2: no town is shown."""
    await seed(site.app, [*(("Kortrijk", "food", [50, 60]),) * 6,
                          *(("Kortrijk", "food", [40]),) * 2, *(("Brugge", "food", [40]),) * 5])
    browser = await site.logged_in(await site.person("516", Role.COACH))
    progress = await (await browser.get("/dashboard/progress")).text()
    assert "Kortrijk" not in progress
    assert "Per gemeente kan nog niet" in progress
    assert "opnieuw deed (6 zaken)" in progress  # the programme-wide change is shown


# -- the audit trail ---------------------------------------------------------------------


async def test_every_view_of_personal_data_and_every_download_is_audited(site: Site) -> None:
    await seed(site.app)
    admin = await site.logged_in(await site.person("517", Role.ADMIN))
    for path in ("/dashboard/", "/dashboard/tickets", "/dashboard/roles", "/dashboard/audit"):
        assert (await admin.get(path)).status == 200
    download = await admin.get("/dashboard/exports/file?what=users&format=csv")
    assert download.status == 200
    assert download.headers["Content-Disposition"].startswith('attachment; filename="kiss-users')
    body = (await download.read()).decode("utf-8-sig")
    assert body.count("\n") == 21  # a header and 19 shops, the admin (no consent) too
    async with site.app.db.transaction() as tx:
        found = [(e.actor, e.action, e.detail.get("page") or e.detail.get("via"))
                 for e in await audit.entries(tx) if e.actor == "telegram:517"]
    # (the stats entry carries the real time, the others the test's clock: compare sorted)
    assert sorted(found) == sorted([("telegram:517", "dashboard_login", "dashboard"),
                     ("telegram:517", "stats", "dashboard"),
                     ("telegram:517", "dashboard_view", "tickets"),
                     ("telegram:517", "dashboard_view", "roles"),
                     ("telegram:517", "dashboard_view", "audit"),
                     ("telegram:517", "export", "dashboard")])
    async with site.app.db.transaction() as tx:
        export = [e for e in await audit.entries(tx) if e.action == "export"][-1]
    assert export.detail["rows"] == 20 and export.detail["what"] == ["users"]


async def test_erasing_a_coach_takes_their_links_and_sessions_along(site: Site) -> None:
    coach = await site.person("518", Role.COACH)
    browser = await site.logged_in(coach)
    await site.link(coach)
    async with site.app.db.transaction() as tx:
        counts = await erasure.erase(tx, shopkeeper_id=coach, actor="self", reason="test")
    assert counts["dashboard_login"] == 2 and counts["dashboard_session"] == 1
    async with site.app.db.transaction() as tx:
        left = [(await tx.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("dashboard_login", "dashboard_session")]
    assert left == [0, 0]
    assert (await browser.get("/dashboard/")).status == 401


async def test_the_overview_filters_on_a_period(site: Site) -> None:
    """The seeded checks: everyone's latest 12 weeks ago; Kortrijk's six first ones 24
    weeks ago."""
    await seed(site.app)
    browser = await site.logged_in(await site.person("519", Role.COACH))
    day = (utcnow() - timedelta(weeks=20)).date().isoformat()
    first_only = await (await browser.get(f"/dashboard/?round=t0&until={day}")).text()
    assert "Gemiddelde score per thema (6 zaken)" in first_only
    assert f'name="until" value="{day}"' in first_only
    recent = await (await browser.get(f"/dashboard/?since={utcnow().date()}")).text()
    assert 'id="too-few"' in recent
    everything = await (await browser.get("/dashboard/?since=gisteren")).text()
    assert "Die datum kan ik niet lezen" in everything
    assert "Gemiddelde score per thema (19 zaken)" in everything
    async with site.app.db.transaction() as tx:
        views = [e.detail for e in await audit.entries(tx) if e.action == "stats"]
    assert views[0]["until"] is not None and views[0]["basis"] == "first"


async def test_the_overview_is_never_stale(site: Site) -> None:
    """The overview keeps its figures while the data stays the same (each view audited),
    and computes them again after a new result, a changed profile or an erasure."""
    shops = await seed(site.app)
    browser = await site.logged_in(await site.person("520", Role.COACH))

    figures: list[str] = []  # what each view's Server-Timing says of its figures

    async def shown() -> str:
        response = await browser.get("/dashboard/")
        page = await response.text()
        timing = re.search(r'figures;dur=[0-9.]+;desc="(\w+)"',
                           response.headers["Server-Timing"])
        assert timing is not None
        figures.append(timing[1])
        found = re.search(r"Gemiddelde score per thema \((\d+) zaken\)", page)
        assert found is not None
        table = re.search(r'<th scope="row">Kortrijk</th><td>(\d+)</td><td>(\d+)</td>', page)
        return f"{found[1]} {table[1]}:{table[2]}" if table else found[1]

    assert await shown() == "19 6:65"
    assert await shown() == "19 6:65"
    assert figures == ["computed", "kept"]
    async with site.app.db.transaction() as tx:
        await add_shop(tx, "late", "Kortrijk", "food", [100])
    assert await shown() == "20 7:70"
    async with site.app.db.transaction() as tx:
        moved = await shopkeepers.find_by_identity(tx, channel="telegram", external_id="late")
        assert moved is not None
        await shopkeepers.update(tx, shopkeeper=moved, municipality="Brugge")
    assert await shown() == "20 6:65"
    async with site.app.db.transaction() as tx:
        await erasure.erase(tx, shopkeeper_id=shops[0], actor="self", reason="test")
    assert await shown() == "19 5:70"  # Kortrijk: 5 shops left
    assert figures == ["computed", "kept", "computed", "computed", "computed"]
    async with site.app.db.transaction() as tx:
        views = [e for e in await audit.entries(tx) if e.action == "stats"]
    assert len(views) == 5
