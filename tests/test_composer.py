"""A coach composes a broadcast in chat: text, languages, audience, preview, when, confirm;
and follows it up from /broadcasts (cancel, delete from the chats)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from recording import (
    CHAT,
    TUESDAY,
    Clock,
    handle,
    local,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    recorder,
    say,
)
from test_broadcasts import SCORES, person, town

from bot.app import App
from flows.messages import Outbound, Reply
from handlers.inbound import Inbound
from storage import broadcasts, drafts, media, roles
from storage.tables import OUTBOX, OutboxStatus, Role, utcnow


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


async def coach(app: App, user: str = "coach") -> int:
    """A coach who took part as a shopkeeper too (so is in every audience)."""
    found = await person(app, user, shop_type="other", scores=SCORES, focus=("beleving",))
    async with app.db.transaction() as tx:
        await roles.grant(tx, shopkeeper_id=found, role=Role.COACH, by="test")
    return found


async def press(app: App, ref: str, choice: str, user: str = "coach") -> list[Outbound]:
    return await handle(app, Inbound(CHAT, user, reply=Reply(choice=choice, ref=ref),
                                     press=f"press-{ref}-{choice}"))


def last(messages: list[Outbound]) -> Outbound:
    assert messages, "the bot said nothing"
    return messages[-1]


def labels(message: Outbound) -> dict[str, str]:
    return {b.id: b.label for b in message.buttons}


async def test_a_coach_composes_a_broadcast_from_text_to_confirmation(app: App) -> None:
    await town(app)
    coach_id = await coach(app)
    asked = last(await say(app, "/broadcast", "coach"))
    assert asked.ref == "bc.text" and "Schrijf je bericht" in asked.text
    ready = last(await say(app, "Koopavond <b>vrijdag</b> tot 21u!", "coach"))
    assert ready.ref == "bc.languages" and "Nederlands" in ready.text
    assert set(labels(ready)) == {"en", "fr", "_cancel", "_next"}

    english = last(await press(app, "bc.languages", "en"))
    assert english.ref == "bc.text_en" and "English" in english.text
    ready = last(await say(app, "Late-night shopping <b>Friday</b>!", "coach"))
    assert "Nederlands, English" in ready.text

    audience = last(await press(app, "bc.languages", "_next"))
    assert audience.ref == "bc.audience" and "Iedereen" in audience.text
    assert "→ 5 winkeliers" in audience.text  # the town's four and the coach
    towns = last(await press(app, "bc.audience", "municipality"))
    assert labels(towns)["Kortrijk"] == "Kortrijk (3)"
    narrowed = last(await press(app, "bc.municipality", "Kortrijk"))
    assert "in Kortrijk" in narrowed.text and "→ 3 winkeliers" in narrowed.text
    await press(app, "bc.audience", "shop_type")
    narrowed = last(await press(app, "bc.shop_type", "food"))
    assert "in Kortrijk · Voeding" in narrowed.text and "→ 1 winkeliers" in narrowed.text

    shown = await press(app, "bc.audience", "_next")
    assert [m.text for m in shown[:-1]] == ["Koopavond <b>vrijdag</b> tot 21u!"]
    assert shown[0].html and last(shown).ref == "bc.preview"
    assert "Het gaat naar 1 winkeliers (Nederlands: 1)" in last(shown).text

    assert last(await press(app, "bc.preview", "later")).ref == "bc.when"
    unreadable = await say(app, "ergens volgende week", "coach")
    assert "kan ik niet lezen" in unreadable[0].text
    confirm = last(await say(app, "morgen 10u", "coach"))
    assert confirm.ref == "bc.confirm" and "woensdag 31/03 om 10:00" in confirm.text
    assert "urgent" not in labels(confirm)  # within the sending hours: nothing to force

    made = last(await press(app, "bc.confirm", "send"))
    assert "is ingepland" in made.text and "woensdag 31/03 om 10:00" in made.text
    async with app.db.transaction() as tx:
        [stored] = await broadcasts.recent(tx)
        assert await drafts.get(tx, coach=coach_id) is None
    assert stored.texts == {"nl": "Koopavond <b>vrijdag</b> tot 21u!",
                            "en": "Late-night shopping <b>Friday</b>!"}
    assert stored.segment == {"municipality": ["Kortrijk"], "shop_type": ["food"]}
    assert stored.send_at == local(2027, 3, 31, 10) and stored.created_by == coach_id
    assert not stored.urgent and stored.created_via == f"{CHAT}:coach"


async def test_a_button_of_an_earlier_step_changes_nothing(app: App) -> None:
    await town(app)
    coach_id = await coach(app)
    await say(app, "/broadcast", "coach")
    await say(app, "Hallo", "coach")
    await press(app, "bc.languages", "_next")
    stale = await press(app, "bc.languages", "fr")  # the language card, pressed again
    assert stale[0].notice and "vorige stap" in stale[0].text
    async with app.db.transaction() as tx:
        assert await drafts.step_of(tx, coach=coach_id) == "audience"


async def test_formatting_errors_are_explained_and_the_text_can_be_sent_again(
        app: App) -> None:
    await coach(app)
    await say(app, "/broadcast", "coach")
    refused = await say(app, "Dit is <u>onderlijnd</u>", "coach")
    assert "Die opmaak ken ik niet" in refused[0].text
    assert last(refused).ref == "bc.text"  # asked again
    refused = await say(app, '<a href="javascript:alert(1)">klik</a>', "coach")
    assert "https://" in refused[0].text
    assert last(await say(app, "<b>Goed</b> zo", "coach")).ref == "bc.languages"


async def test_formatting_from_the_app_and_a_photo_become_the_broadcast(app: App) -> None:
    await town(app)
    coach_id = await coach(app)
    await say(app, "/broadcast", "coach")
    photo = Reply(text="Nieuw: proefdag", photo=("file-123", "unique-abc"),
                  formatted="Nieuw: <b>proefdag</b>")
    ready = last(await handle(app, Inbound(CHAT, "coach", reply=photo)))
    assert "met foto" in ready.text
    await press(app, "bc.languages", "_next")
    shown = await press(app, "bc.audience", "_next")
    async with app.db.transaction() as tx:
        draft = await drafts.get(tx, coach=coach_id)
        assert draft is not None and draft.media_id is not None
        stored = await media.get(tx, media_id=draft.media_id)
    # Kept as where it came from; whether that id can be sent again is the channel's call.
    assert stored is not None and stored.origin == (CHAT, "file-123")
    assert stored.platform_ids == {} and stored.data is None
    assert shown[0].photo == draft.media_id and shown[0].text == "Nieuw: <b>proefdag</b>"
    await press(app, "bc.preview", "now")
    await press(app, "bc.confirm", "send")
    await app.broadcasts.tick(TUESDAY)
    async with app.db.transaction() as tx:
        payloads = [row[0] for row in await tx.execute(
            sa.select(OUTBOX.c.payload).where(OUTBOX.c.broadcast_id.is_not(None)))]
    assert len(payloads) == 5 and all(p["photo"] == draft.media_id for p in payloads)


async def test_outside_the_sending_hours_the_coach_may_mark_it_urgent(
        app: App, clock: Clock) -> None:
    await town(app)
    await coach(app)
    clock.now = local(2027, 4, 4, 11)  # a Sunday
    await say(app, "/broadcast", "coach")
    await say(app, "Straat afgesloten door brand", "coach")
    await press(app, "bc.languages", "_next")
    await press(app, "bc.audience", "_next")
    confirm = last(await press(app, "bc.preview", "now"))
    assert "buiten de verzenduren" in confirm.text and "maandag 05/04 om 09:00" in confirm.text
    made = last(await press(app, "bc.confirm", "urgent"))
    assert "nu meteen" in made.text
    async with app.db.transaction() as tx:
        [stored] = await broadcasts.recent(tx)
    assert stored.urgent


async def test_typing_outside_a_typing_step_is_the_coach_s_own_conversation(
        app: App) -> None:
    await coach(app)
    await say(app, "/broadcast", "coach")
    await say(app, "Hallo", "coach")
    await press(app, "bc.languages", "_next")
    answer = await say(app, "Kortrijk", "coach")  # not asked for: no composer answer
    assert all(m.ref is None or not m.ref.startswith("bc.") for m in answer)
    towns = last(await press(app, "bc.audience", "municipality"))
    assert towns.ref == "bc.municipality"
    typed = last(await say(app, "Ieper", "coach"))  # asked for now: a municipality
    assert "in Ieper" in typed.text and "→ 0 winkeliers" in typed.text
    nobody = await press(app, "bc.audience", "_next")
    assert "bereik je niemand" in nobody[0].text and last(nobody).ref == "bc.audience"


async def test_a_shopkeeper_cannot_use_the_composer_or_its_buttons(app: App) -> None:
    await town(app)
    refused = await say(app, "/broadcast", "kortrijk-food")
    assert "ken ik niet" in refused[0].text
    pressed = await press(app, "bc.confirm", "send", user="kortrijk-food")
    assert pressed and "oudere vraag" in pressed[0].text
    async with app.db.transaction() as tx:
        assert await broadcasts.recent(tx) == []


async def test_cancel_drops_the_draft(app: App) -> None:
    coach_id = await coach(app)
    await say(app, "/broadcast", "coach")
    cancelled = await press(app, "bc.text", "_cancel")
    assert "geschrapt" in cancelled[0].text
    async with app.db.transaction() as tx:
        assert await drafts.get(tx, coach=coach_id) is None


async def test_the_list_cancels_a_scheduled_broadcast(app: App) -> None:
    await town(app)
    await coach(app)
    await say(app, "/broadcast", "coach")
    await say(app, "Later deze week", "coach")
    await press(app, "bc.languages", "_next")
    await press(app, "bc.audience", "_next")
    await press(app, "bc.preview", "later")
    await say(app, "vrijdag 10u", "coach")
    await press(app, "bc.confirm", "send")
    listing = last(await say(app, "/broadcasts", "coach"))
    [made_id] = [b.id.split(".")[1] for b in listing.buttons if b.id.startswith("cancel.")]
    assert listing.ref == "bcl" and "gepland" in listing.text
    done = await press(app, "bcl", f"cancel.{made_id}")
    assert "geannuleerd" in done[0].text
    again = await press(app, "bcl", f"cancel.{made_id}")
    assert "al helemaal verstuurd of geannuleerd" in again[0].text


async def test_delete_from_the_chats_queues_one_deletion_per_delivered_chat(
        app: App) -> None:
    await town(app)
    await coach(app)
    await say(app, "/broadcast", "coach")
    await say(app, "Oeps, verkeerde datum", "coach")
    await press(app, "bc.languages", "_next")
    await press(app, "bc.audience", "_next")
    await press(app, "bc.preview", "now")
    await press(app, "bc.confirm", "send")
    await app.broadcasts.tick(TUESDAY)
    await app.sender.poll()
    await app.sender.marks.flush()
    async with app.db.transaction() as tx:
        [made] = await broadcasts.recent(tx)
        # What the channel reported per delivered row; one row was delivered long ago.
        sent = [row[0] for row in await tx.execute(sa.select(OUTBOX.c.id).where(
            OUTBOX.c.broadcast_id == made.id, OUTBOX.c.status == OutboxStatus.SENT)
            .order_by(OUTBOX.c.id))]
        for number, row in enumerate(sent):
            await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.id == row).values(
                platform_ids=[str(100 + number)]))
        await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.id == sent[0]).values(
            sent_at=utcnow() - timedelta(hours=49)))
    listing = last(await say(app, "/broadcasts", "coach"))
    assert f"delete.{made.id}" in labels(listing)
    sure = last(await press(app, "bcl", f"delete.{made.id}"))
    assert "bij de 5 winkeliers" in sure.text
    before = len(recorder(app).sent)
    # The coach got the broadcast too: the answer waits for the deletion in their chat.
    assert await press(app, "bcl", f"deleteyes.{made.id}") == []
    await app.sender.poll()
    delivered = [m for _, m, _ in recorder(app).sent[before:]]
    [deleting] = [m for m in delivered if "gewist" in m.text]
    assert "uit 4 chats gewist" in deleting.text and "Bij 1 winkeliers" in deleting.text
    assert "al gewist" in last(await press(app, "bcl", f"deleteyes.{made.id}")).text
    deletions = [m for m in delivered if m.delete]
    assert sorted(d.delete[0] for d in deletions) == ["101", "102", "103", "104"]
    listing = last(await say(app, "/broadcasts", "coach"))
    assert "gewist uit de chats" in listing.text and f"delete.{made.id}" not in labels(listing)
