"""Broadcasts, tickets and roles on the dashboard: the live count follows the audience, a
composed message is previewed escaped and goes out through the outbox, a mistake comes
back with everything typed still there, and no page renders user text unescaped."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import FormData
from dashboard_site import Site, csrf_of, open_site, seed
from recording import Clock, local

from bot.app import App
from storage import broadcasts, roles, shopkeepers, tickets
from storage.tables import OUTBOX, OutboxStatus, Role

#: The smallest PNG: one pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


@pytest.fixture
async def site(app: App) -> AsyncIterator[Site]:
    async for opened in open_site(app, Clock(local(2026, 12, 1, 10))):  # a Tuesday, 10:00
        yield opened


async def test_the_live_count_follows_the_audience(site: Site) -> None:
    await seed(site.app)
    coach = await site.logged_in(await site.person("601", Role.COACH))

    async def count(query: str) -> int | None:
        answer = await coach.get(f"/dashboard/broadcasts/reach?{query}")
        assert answer.status == 200
        found = (await answer.json())["count"]
        assert found is None or isinstance(found, int)
        return found

    assert await count("") == 19
    assert await count("municipality=Kortrijk") == 6
    assert await count("municipality=Kortrijk&municipality=Damme") == 8
    assert await count("arrondissement=Brugge") == 7
    assert await count("arrondissement=Brugge&shop_type=fashion") == 0
    assert await count("municipality=Atlantis") is None  # not a place: no count, no error
    form = await (await coach.get("/dashboard/broadcasts/new")).text()
    assert '<output id="recipient-count" for="audience">19</output>' in form


async def test_a_composed_broadcast_is_previewed_and_sent(site: Site) -> None:
    await seed(site.app)
    coach_id = await site.person("602", Role.COACH)
    coach = await site.logged_in(coach_id)
    token = await csrf_of(coach, "/dashboard/broadcasts/new")
    form = FormData({"csrf": token, "text_nl": "<b>Koopavond</b> vrijdag & zaterdag",
                     "text_fr": "<i>Nocturne</i> vendredi", "municipality": "Kortrijk",
                     "urgent": "yes"})
    form.add_field("photo", PNG, filename="affiche.png", content_type="image/png")
    preview = await coach.post("/dashboard/broadcasts/preview", data=form)
    page = await preview.text()
    assert preview.status == 200, page
    assert "Dit bericht bereikt nu 6 winkeliers." in page
    assert "<b>Koopavond</b> vrijdag &amp; zaterdag" in page
    media = re.search(r'name="media_id" value="(\d+)"', page)
    assert media is not None
    photo = await coach.get(f"/dashboard/broadcasts/photo/{media[1]}")
    assert await photo.read() == PNG
    confirm = {name: html.unescape(value) for name, value in re.findall(  # as a browser
        r'<input type="hidden" name="(\w+)" value="([^"]*)">',
        page.split('action="/dashboard/broadcasts"')[1].split("</form>")[0])}
    sent = await coach.post("/dashboard/broadcasts", data=confirm, allow_redirects=False)
    assert sent.status == 303
    async with site.app.db.transaction() as tx:
        [made] = await broadcasts.recent(tx)
    assert made.created_by == coach_id and made.created_via == "dashboard:telegram:602"
    assert made.segment == {"municipality": ["Kortrijk"]} and made.urgent
    assert made.texts == {"nl": "<b>Koopavond</b> vrijdag &amp; zaterdag",
                          "fr": "<i>Nocturne</i> vendredi"}
    assert made.media_id == int(media[1])
    assert await site.app.broadcasts.tick(now=site.clock()) == 6
    listing = await (await coach.get("/dashboard/broadcasts")).text()
    assert '<td data-count="queued">6</td>' in listing
    counts = await (await coach.get("/dashboard/broadcasts/counts")).json()
    assert counts[str(made.id)]["queued"] == 6


async def test_a_mistake_comes_back_with_everything_typed(site: Site) -> None:
    coach = await site.logged_in(await site.person("603", Role.COACH))
    token = await csrf_of(coach, "/dashboard/broadcasts/new")
    answer = await coach.post("/dashboard/broadcasts/preview", data={
        "csrf": token, "text_nl": "<b>Koopavond vrijdag", "text_en": "<script>x</script>",
        "municipality": "Kortrijk", "when": "gisteren om half negen"})
    page = await answer.text()
    assert answer.status == 400
    assert "&lt;b&gt;Koopavond vrijdag</textarea>" in page
    assert "&lt;script&gt;x&lt;/script&gt;</textarea>" in page
    assert "<script>x" not in page
    assert "niet (juist) wordt afgesloten" in page  # the chat's own explanation
    assert "Die opmaak ken ik niet" in page
    assert "Dat moment kan ik niet lezen" in page
    assert '<option value="Kortrijk" selected>' in page
    async with site.app.db.transaction() as tx:
        assert await broadcasts.recent(tx) == []


async def test_a_broadcast_can_be_cancelled_and_deleted_from_the_chats(site: Site) -> None:
    coach_id = await site.person("604", Role.COACH)
    coach = await site.logged_in(coach_id)
    async with site.app.db.transaction() as tx:
        later = await broadcasts.create(tx, created_by=coach_id, created_via="test",
                                        texts={"nl": "Later"}, segment={}, urgent=False,
                                        send_at=site.clock() + timedelta(days=1),
                                        now=site.clock())
        sent = await broadcasts.create(tx, created_by=coach_id, created_via="test",
                                       texts={"nl": "Nu"}, segment={}, urgent=False,
                                       send_at=site.clock(), now=site.clock())
        await broadcasts.started(tx, broadcast_id=sent.id, recipients=0)
    listing = await (await coach.get("/dashboard/broadcasts")).text()
    assert f'action="/dashboard/broadcasts/{later.id}/cancel"' in listing
    assert f'href="/dashboard/broadcasts/{sent.id}/delete"' in listing
    sure = await (await coach.get(f"/dashboard/broadcasts/{sent.id}/delete")).text()
    assert "Bericht 2 uit de chats wissen?" in sure
    token = await csrf_of(coach, "/dashboard/broadcasts")
    for path in (f"/dashboard/broadcasts/{later.id}/cancel",
                 f"/dashboard/broadcasts/{sent.id}/delete"):
        assert (await coach.post(path, data={"csrf": token},
                                 allow_redirects=False)).status == 303
    async with site.app.db.transaction() as tx:
        cancelled = await broadcasts.get(tx, broadcast_id=later.id)
        deleted = await broadcasts.get(tx, broadcast_id=sent.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert deleted is not None and deleted.deleted_at is not None


async def test_a_finished_broadcast_goes_again_to_those_it_may_not_have_reached(
        site: Site) -> None:
    coach_id = await site.person("608", Role.COACH)
    coach = await site.logged_in(coach_id)
    async with site.app.db.transaction() as tx:
        made = await broadcasts.create(tx, created_by=coach_id, created_via="test",
                                       texts={"nl": "Nu"}, segment={}, urgent=False,
                                       send_at=site.clock(), now=site.clock())
        people = [(await shopkeepers.find_or_create(tx, channel="telegram", external_id=chat,
                                                    language="nl"))[0] for chat in ("81", "82")]
        await broadcasts.enqueue(tx, broadcast_id=made.id, rows=[
            {"shopkeeper_id": p.id, "channel": "telegram", "external_id": chat,
             "payload": {"text": "Nu", "lang": "nl"}}
            for p, chat in zip(people, ("81", "82"), strict=True)])
        await broadcasts.started(tx, broadcast_id=made.id, recipients=2)
        # One went out; the bot stopped while sending the other: it may have arrived.
        await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.broadcast_id == made.id,
                                                 OUTBOX.c.external_id == "81")
                         .values(status=OutboxStatus.SENT))
        await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.broadcast_id == made.id,
                                                 OUTBOX.c.external_id == "82")
                         .values(status=OutboxStatus.UNCERTAIN))
        await broadcasts.finished(tx, broadcast_id=made.id, now=site.clock())
    listing = await (await coach.get("/dashboard/broadcasts")).text()
    assert f'action="/dashboard/broadcasts/{made.id}/resend"' in listing
    assert "Opnieuw naar 1 onzekere" in listing
    token = await csrf_of(coach, "/dashboard/broadcasts")
    refused = await coach.post(f"/dashboard/broadcasts/{made.id}/resend", data={},
                               allow_redirects=False)
    assert refused.status == 403  # no CSRF token: nothing happens
    async with site.app.db.transaction() as tx:
        assert (await broadcasts.counts(tx, broadcast_id=made.id)).uncertain == 1
    answer = await coach.post(f"/dashboard/broadcasts/{made.id}/resend",
                              data={"csrf": token}, allow_redirects=False)
    assert answer.status == 303
    async with site.app.db.transaction() as tx:
        counts = await broadcasts.counts(tx, broadcast_id=made.id)
        again = await broadcasts.get(tx, broadcast_id=made.id)
    assert (counts.uncertain, counts.queued, counts.sent) == (0, 1, 1)
    assert again is not None and again.status == "sending"
    listing = await (await coach.get("/dashboard/broadcasts")).text()
    assert "/resend" not in listing


async def test_tickets_and_leads_show_user_text_escaped(site: Site) -> None:
    async with site.app.db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="9",
                                                     language="nl")
        await shopkeepers.update(tx, shopkeeper=person, shop_name="<img src=x onerror=alert(1)>",
                                 municipality="Kortrijk")
        await tickets.open_ticket(tx, shopkeeper_id=person.id,
                                  question="Hoe <b>werkt</b> dat?", now=site.clock())
        other, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="10",
                                                    language="nl")
        await tickets.open_ticket(tx, shopkeeper_id=other.id,
                                  question=site.app.texts.get("nl", "tk_contact_request"),
                                  now=site.clock())
    coach = await site.logged_in(await site.person("605", Role.COACH))
    page = await (await coach.get("/dashboard/tickets")).text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "Hoe &lt;b&gt;werkt&lt;/b&gt; dat?" in page
    assert "Wachten op een coach (2)" in page and "Vroegen om contact (1)" in page


async def test_an_admin_grants_revokes_and_invites(site: Site) -> None:
    target = await site.person("606")
    admin = await site.logged_in(await site.person("607", Role.ADMIN))
    token = await csrf_of(admin, "/dashboard/roles")
    grant = await admin.post("/dashboard/roles", data={
        "csrf": token, "address": "telegram:606", "role": "coach", "action": "grant"})
    assert grant.status == 200 and "telegram:606" in await grant.text()
    async with site.app.db.transaction() as tx:
        assert await roles.of(tx, shopkeeper_id=target) == {Role.COACH}
    await admin.post("/dashboard/roles", data={
        "csrf": token, "address": "telegram:606", "role": "coach", "action": "revoke"})
    async with site.app.db.transaction() as tx:
        assert await roles.of(tx, shopkeeper_id=target) == frozenset()
    unknown = await admin.post("/dashboard/roles", data={
        "csrf": token, "address": "telegram:nobody", "role": "coach", "action": "grant"})
    assert "Dat adres ken ik niet" in await unknown.text()
    invite = await (await admin.post("/dashboard/roles/invite",
                                     data={"csrf": token, "role": "coach"})).text()
    assert re.search(r'<code id="invite-link">/start invite_[\w-]{32}</code>', invite)
