"""Broadcasts on the dashboard: compose, preview, send now or later; the list with live
counts; cancel; delete from the chats.

The same use cases as the chat composer and the command line: :class:`flows.audience.Segment`
says who it reaches (:meth:`handlers.broadcasts.Broadcasts.audience` counts them, opted-out
and unreachable people never), :func:`flows.rich_text.parse` checks the text,
:func:`flows.when.parse_when` reads a typed moment, :class:`handlers.broadcasts.Broadcasts`
makes it and the app's tick sends it through the outbox. Nothing is queued before the coach
confirms the preview; a form with a mistake comes back with everything typed still in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup
from multidict import MultiMapping

from bot.dashboard.desk import Desk, desk_of, language_of, render, see_other, visitor_of
from bot.dashboard.login import requires
from flows.audience import KEYS, Segment, SegmentError
from flows.definition import DEFAULT_LANGUAGE, LANGUAGES
from flows.pictures import PictureError, picture
from flows.rich_text import MAX_TELEGRAM_CAPTION, MAX_TELEGRAM_TEXT, RichText, RichTextError, parse
from flows.tips import LEVELS
from flows.when import DayWords, WhenError, parse_when
from storage import broadcasts, media
from storage.tables import BroadcastStatus, Role

#: Broadcasts on the list.
LISTED = 20
#: Telegram lets a bot delete its messages for 48 hours (with a margin).
DELETABLE_FOR = timedelta(hours=47)


@dataclass(slots=True)
class Draft:
    """What the compose form holds: the texts per language, the segment's chosen values
    per key, when, and the photo once uploaded (its media id)."""

    texts: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, list[str]] = field(default_factory=dict)
    when: str = ""
    urgent: bool = False
    media_id: int | None = None

    @classmethod
    def read(cls, form: MultiMapping[Any]) -> Draft:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        chosen = {key: [v for v in form.getall(key, []) if isinstance(v, str) and v.strip()]
                  for key in KEYS}
        media = text("media_id")
        return cls({lang: text(f"text_{lang}") for lang in LANGUAGES if text(f"text_{lang}")},
                   {key: values for key, values in chosen.items() if values},
                   text("when"), text("urgent") == "yes",
                   int(media) if media.isdigit() else None)

    def pairs(self) -> list[str]:
        """The segment as ``KEY=VALUE`` (what :meth:`Segment.parse` reads)."""
        return [f"{key}={value}" for key, values in self.chosen.items() for value in values]


@requires(Role.COACH)
async def listing(request: web.Request) -> web.Response:
    """``GET /broadcasts``: the latest, with live counts and what can be done."""
    desk = desk_of(request)
    now = desk.clock()
    lines = []
    async with desk.db.transaction() as tx:
        for made in await broadcasts.recent(tx, limit=LISTED):
            counts = await broadcasts.counts(tx, broadcast_id=made.id)
            text = made.texts.get(DEFAULT_LANGUAGE) or next(iter(made.texts.values()), "")
            lines.append({
                "id": made.id, "counts": counts, "send_at": made.send_at,
                "status": "deleted" if made.deleted_at is not None else made.status,
                "text": parse(text).plain() if text else "",
                "segment": Segment({key: frozenset(values) for key, values
                                    in made.segment.items()}).describe(),
                "cancellable": made.status in (BroadcastStatus.SCHEDULED,
                                               BroadcastStatus.SENDING),
                # A crash mid-send left some unsure: the coach may send those again (some
                # may then see it twice), as in the chat's /broadcasts.
                "resendable": (made.status == BroadcastStatus.DONE and counts.uncertain > 0
                               and made.deleted_at is None),
                "deletable": (made.status in (BroadcastStatus.SENDING, BroadcastStatus.DONE)
                              and made.deleted_at is None
                              and now - made.send_at < DELETABLE_FOR)})
    return render(request, "broadcasts.html", {"broadcasts": lines})


@requires(Role.COACH)
async def counts(request: web.Request) -> web.Response:
    """``GET /broadcasts/counts``: the list's counts as JSON (the page refreshes them)."""
    desk = desk_of(request)
    found = {}
    async with desk.db.transaction() as tx:
        for made in await broadcasts.recent(tx, limit=LISTED):
            c = await broadcasts.counts(tx, broadcast_id=made.id)
            found[str(made.id)] = {"queued": c.queued, "sent": c.sent, "failed": c.failed,
                                   "unreachable": c.unreachable, "uncertain": c.uncertain}
    return web.json_response(found)


@requires(Role.COACH)
async def compose(request: web.Request) -> web.Response:
    """``GET /broadcasts/new``: the form (empty)."""
    return _form(request, Draft(), {}, await _reach(desk_of(request), Draft()))


@requires(Role.COACH)
async def reach(request: web.Request) -> web.Response:
    """``GET /broadcasts/reach?municipality=…``: how many the audience reaches now, as JSON
    (the form's live count); a value that is not accepted says so."""
    desk = desk_of(request)
    draft = Draft.read(request.query)
    try:
        segment = Segment.parse(draft.pairs(), desk.places)
    except SegmentError:
        return web.json_response({"count": None})
    return web.json_response({"count": len(await desk.broadcasts.audience(segment))})


@requires(Role.COACH)
async def preview(request: web.Request) -> web.Response:
    """``POST /broadcasts/preview``: check everything, store the photo, and show the
    message as shopkeepers will see it, per language, with the count and when; or the
    form again with what is wrong."""
    desk, lang = desk_of(request), language_of(request)
    say = desk.texts.get
    form = await request.post()
    draft = Draft.read(form)
    problems: dict[str, str] = {}
    upload = form.get("photo")
    if isinstance(upload, web.FileField) and upload.filename:
        try:
            photo = picture(upload.file.read(), upload.filename)
        except PictureError:
            problems["photo"] = say(lang, "dash_bc_photo_refused")
        else:
            draft.media_id = await desk.broadcasts.attach(photo)
    limit = MAX_TELEGRAM_CAPTION if draft.media_id is not None else MAX_TELEGRAM_TEXT
    parsed: dict[str, RichText] = {}
    if DEFAULT_LANGUAGE not in draft.texts:
        problems["text_nl"] = say(lang, "bc_error_empty")
    for code, text in draft.texts.items():
        try:
            parsed[code] = parse(text, limit=limit)
        except RichTextError as exc:
            problems[f"text_{code}"] = say(lang, f"bc_error_{exc.code}", reason=exc.reason)
    segment = None
    try:
        segment = Segment.parse(draft.pairs(), desk.places)
    except SegmentError as exc:
        problems["audience"] = str(exc)
    send_at = None
    if draft.when:
        try:
            send_at = parse_when(draft.when, desk.clock(), day_words(desk, lang))
        except WhenError as exc:
            problems["when"] = say(lang, f"bc_when_{exc.code}")
    count = await _reach(desk, draft)
    if problems or segment is None:
        return _form(request, draft, problems, count, status=400)
    return render(request, "broadcast_preview.html", {
        "draft": draft, "count": count, "send_at": send_at,
        "waits": (send_at or desk.clock()) if not desk.broadcasts.hours.allowed(
            send_at or desk.clock()) and not draft.urgent else None,
        "previews": [(code, Markup(text.html()))  # noqa: S704 - escaped by RichText.html
                     for code, text in parsed.items()],
        "segment": _describe(desk, segment, lang)})


@requires(Role.COACH)
async def change(request: web.Request) -> web.Response:
    """``POST /broadcasts/change``: back from the preview to the form, everything kept."""
    draft = Draft.read(await request.post())
    return _form(request, draft, {}, await _reach(desk_of(request), draft))


@requires(Role.COACH)
async def photo(request: web.Request) -> web.Response:
    """``GET /broadcasts/photo/{id}``: a broadcast's photo, for the preview."""
    desk = desk_of(request)
    async with desk.db.transaction() as tx:
        found = await media.get(tx, media_id=int(request.match_info["id"]))
    if found is None or found.data is None:
        raise web.HTTPNotFound
    return web.Response(body=found.data, content_type=found.content_type)


@requires(Role.COACH)
async def send(request: web.Request) -> web.StreamResponse:
    """``POST /broadcasts``: make the broadcast the preview showed (checked again)."""
    desk, lang = desk_of(request), language_of(request)
    form = await request.post()
    draft = Draft.read(form)
    try:
        texts = {code: parse(text, limit=MAX_TELEGRAM_CAPTION if draft.media_id
                             else MAX_TELEGRAM_TEXT) for code, text in draft.texts.items()}
        segment = Segment.parse(draft.pairs(), desk.places)
        send_at = (parse_when(draft.when, desk.clock(), day_words(desk, lang))
                   if draft.when else None)
        if DEFAULT_LANGUAGE not in texts:
            raise RichTextError("empty", "no Dutch text")
    except (RichTextError, SegmentError, WhenError):
        return _form(request, draft, {"audience": desk.texts.get(lang, "dash_bc_changed")},
                     await _reach(desk, draft), status=400)
    visitor = visitor_of(request)
    await desk.broadcasts.create(texts=texts, segment=segment, send_at=send_at,
                                 urgent=draft.urgent, created_by=visitor.shopkeeper_id,
                                 via=f"dashboard:{visitor.address}", media_id=draft.media_id)
    return see_other(request, "broadcasts")


@requires(Role.COACH)
async def cancel(request: web.Request) -> web.StreamResponse:
    """``POST /broadcasts/{id}/cancel``: what has not gone out stays home."""
    await desk_of(request).broadcasts.cancel(int(request.match_info["id"]))
    return see_other(request, "broadcasts")


@requires(Role.COACH)
async def resend(request: web.Request) -> web.StreamResponse:
    """``POST /broadcasts/{id}/resend``: again to those it may not have reached."""
    await desk_of(request).broadcasts.resend_uncertain(int(request.match_info["id"]))
    return see_other(request, "broadcasts")


@requires(Role.COACH)
async def confirm_delete(request: web.Request) -> web.Response:
    """``GET /broadcasts/{id}/delete``: are you sure? (how many chats it is in)."""
    desk = desk_of(request)
    number = int(request.match_info["id"])
    async with desk.db.transaction() as tx:
        made = await broadcasts.get(tx, broadcast_id=number)
        found = await broadcasts.counts(tx, broadcast_id=number)
    if made is None:
        raise web.HTTPNotFound
    return render(request, "broadcast_delete.html",
                  {"id": number, "count": found.sent + found.uncertain})


@requires(Role.COACH)
async def delete(request: web.Request) -> web.StreamResponse:
    """``POST /broadcasts/{id}/delete``: delete it from the chats (within 48 hours)."""
    await desk_of(request).broadcasts.delete_from_chats(int(request.match_info["id"]))
    return see_other(request, "broadcasts")


def day_words(desk: Desk, lang: str) -> list[DayWords]:
    """The day words of the visitor's language first, then the others (as the chat)."""
    texts = desk.texts
    return [DayWords(dict(zip(texts.list(code, "bc_relative_days"), range(3), strict=True)),
                     texts.list(code, "bc_weekdays"))
            for code in dict.fromkeys((lang, DEFAULT_LANGUAGE, *LANGUAGES))]


async def _reach(desk: Desk, draft: Draft) -> int | None:
    try:
        segment = Segment.parse(draft.pairs(), desk.places)
    except SegmentError:
        return None
    return len(await desk.broadcasts.audience(segment))


def _describe(desk: Desk, segment: Segment, lang: str) -> list[str]:
    """The audience in words: one line per key, its values by their names."""
    return [", ".join(desk.labels.of(key, value, lang, desk.texts)
                      for value in sorted(values))
            for key, values in sorted(segment.values.items())]


def _form(request: web.Request, draft: Draft, problems: dict[str, str], count: int | None,
          *, status: int = 200) -> web.Response:
    desk, lang = desk_of(request), language_of(request)
    labels = desk.labels
    options = {
        "municipality": [(m, m) for m in desk.places.municipalities],
        "arrondissement": [(a, a) for a in sorted(set(desk.places.arrondissement_of.values()))],
        "shop_type": [(key, names.get(lang, key)) for key, names in labels.shop_types.items()],
        "focus": [(key, names.get(lang, key)) for key, names in labels.themes.items()],
        "level": [(f"{theme}:{band}", labels.of("level", f"{theme}:{band}", lang, desk.texts))
                  for theme in labels.themes for band in LEVELS],
        "language": [(code, desk.texts.get(code, "language_name")) for code in LANGUAGES],
    }
    return render(request, "broadcast_new.html", {
        "draft": draft, "problems": problems, "count": count, "options": options,
        "languages": LANGUAGES}, status=status)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/broadcasts", listing, name="broadcasts")
    app.router.add_get("/broadcasts/counts", counts, name="broadcast_counts")
    app.router.add_get("/broadcasts/new", compose, name="broadcast_new")
    app.router.add_get("/broadcasts/reach", reach, name="broadcast_reach")
    app.router.add_post("/broadcasts/preview", preview, name="broadcast_preview")
    app.router.add_post("/broadcasts/change", change, name="broadcast_change")
    app.router.add_get("/broadcasts/photo/{id:\\d+}", photo, name="broadcast_photo")
    app.router.add_post("/broadcasts", send, name="broadcast_send")
    app.router.add_post("/broadcasts/{id:\\d+}/cancel", cancel, name="broadcast_cancel")
    app.router.add_post("/broadcasts/{id:\\d+}/resend", resend, name="broadcast_resend")
    app.router.add_get("/broadcasts/{id:\\d+}/delete", confirm_delete,
                       name="broadcast_delete_confirm")
    app.router.add_post("/broadcasts/{id:\\d+}/delete", delete, name="broadcast_delete")
