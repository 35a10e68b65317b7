"""Turn the engine's messages into Cloud API message bodies, within WhatsApp's limits.

* ≤ 3 choices whose labels fit 20 characters → reply buttons; otherwise a list message
  (≤ 10 rows, the engine's "back"/"later" included), paged with a "Meer…" row beyond that.
  A label over 24 characters is shortened at a word in the row title, and given whole in
  the row's description.
* Text is split at 4,096 characters; a body with choices holds at most 1,024, so a longer
  text goes first on its own and the choices follow under a short prompt.
* Broadcast HTML (``<b>``, ``<i>``, ``<a>``) becomes WhatsApp's ``*bold*``, ``_italic_`` and
  a plain link (:meth:`flows.rich_text.RichText.whatsapp`).
* Pictures and documents are uploaded (``/media``) and then sent by their media id.

Button and row ids are ``ref|choice`` (the question they answer, as on Telegram), and
``ref|_more|offset`` for the paging row.
"""

from __future__ import annotations

import contextlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bot.delivery.outcomes import Media
from flows.messages import Button, Outbound
from flows.rich_text import RichTextError, parse
from flows.texts import Texts

#: Cloud API limits (reference: messages, interactive object), in characters.
MAX_TEXT = 4096
MAX_BODY = 1024
MAX_CAPTION = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_LIST_BUTTON = 20
MAX_ID = 200
#: A template parameter: one line, no runs of more than four spaces, kept short.
MAX_PARAMETER = 900
SEPARATOR = "|"
MORE = "_more"


@dataclass(frozen=True, slots=True)
class Upload:
    """Bytes to upload to ``/media`` before the call; the call takes the media id."""

    data: bytes
    content_type: str
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """One Cloud API message: ``body`` without ``to``. With ``upload`` or ``media`` the
    body's ``image``/``document`` gets its ``id`` from the upload (or the known id)."""

    body: dict[str, Any]
    upload: Upload | None = None
    media: Media | None = None
    choices: tuple[str, ...] = field(default=())


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: cut at a word when one ends late enough, with
    an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at paragraphs, then lines, then words; a word longer than ``limit`` is cut."""
    if len(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n", " "):
        head, found, _ = text[:limit + len(separator)].rpartition(separator)
        if found and head.strip():
            return [head, *split_text(text[len(head) + len(separator):], limit)]
    return [text[:limit], *split_text(text[limit:], limit)]


def formatted(message: Outbound) -> str:
    """The text as WhatsApp shows it: broadcast HTML turned into its markup."""
    if not message.html:
        return message.text
    try:
        return parse(message.text, limit=1 << 30).whatsapp()
    except RichTextError:  # validated before it was queued; never show raw tags
        return message.text


def one_line(text: str) -> str:
    """A template parameter: no newlines or tabs, no more than four spaces in a row."""
    return shorten(" ".join(text.split()), MAX_PARAMETER)


def choice_id(ref: str, button_id: str) -> str:
    value = f"{ref}{SEPARATOR}{button_id}"
    if len(value) > MAX_ID:
        raise ValueError(f"a choice id over {MAX_ID} characters: {value!r}")
    return value


def parse_choice(value: str) -> tuple[str, str, int | None] | None:
    """``(ref, choice, None)`` for an answer, ``(ref, MORE, offset)`` for the paging row,
    None for an id this bot did not make."""
    ref, separator, rest = value.partition(SEPARATOR)
    if not separator or not ref or not rest:
        return None
    choice, _, offset = rest.partition(SEPARATOR)
    if choice == MORE:
        return (ref, MORE, int(offset)) if offset.isdigit() else None
    return ref, rest, None


class Renderer:
    """Renders for one language's words (the list button, "Meer…", the confirmation).

    Args:
        texts: ``wa_*`` texts from ``flows/texts/whatsapp``.
    """

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    def calls(self, message: Outbound, lang: str, *, media: Media | None = None,
              page: int = 0) -> list[Call]:
        """The calls that send ``message``; ``page`` the offset of a list's first choice
        (after "Meer…"). A message that carries ``answered`` (the label of the answer the
        person just gave) starts with it: WhatsApp cannot mark it on the question. The
        calls are the same on every attempt, so a retry skips the ones that went out."""
        text = formatted(message)
        chosen = message.answered if not page else None
        if chosen:
            # "✅ Gedaan" confirms itself; "Voeding" becomes "✅ Voeding".
            confirmation = chosen if unicodedata.category(chosen[0]) == "So" else \
                self.texts.get(lang, "wa_chosen", label=chosen)
            text = f"{confirmation}\n\n{text}" if text.strip() else confirmation
        image = None
        if message.image is not None:
            image = Upload(message.image.data, "image/png", message.image.name)
        if message.document is not None:
            document = message.document
            caption = document.caption or (text if len(text) <= MAX_CAPTION else "")
            head = Call({"type": "document", "document": {
                "filename": document.name, **({"caption": caption} if caption else {})}},
                upload=Upload(document.data, document.content_type or
                              "application/octet-stream", document.name))
            rest = "" if caption == text else text
            return [head, *self._texts(message, rest, lang, page)]
        if image is not None or media is not None:
            fits = bool(text.strip()) and len(text) <= MAX_CAPTION and not message.buttons
            body: dict[str, Any] = {"type": "image", "image": {"caption": text} if fits else {}}
            head = Call(body, upload=image, media=None if image is not None else media)
            return [head, *([] if fits else self._texts(message, text, lang, page))]
        return self._texts(message, text, lang, page)

    def _texts(self, message: Outbound, text: str, lang: str, page: int) -> list[Call]:
        buttons = message.buttons if message.ref is not None else ()
        if not buttons:
            return [Call({"type": "text", "text": {"body": chunk}})
                    for chunk in split_text(text) if chunk.strip()]
        before: list[Call] = []
        if page:
            text = self.texts.get(lang, "wa_more_body")
        elif len(text) > MAX_BODY or not text.strip():
            before = [Call({"type": "text", "text": {"body": chunk}})
                      for chunk in split_text(text) if chunk.strip()]
            text = self.texts.get(lang, "wa_choose_body")
        assert message.ref is not None
        return [*before, self._choices(message.ref, buttons, text, lang, page)]

    def _choices(self, ref: str, buttons: tuple[Button, ...], body: str, lang: str,
                 page: int) -> Call:
        if (len(buttons) <= MAX_BUTTONS and not page
                and all(len(b.label) <= MAX_BUTTON_TITLE for b in buttons)
                and len({b.label for b in buttons}) == len(buttons)):
            return Call({"type": "interactive", "interactive": {
                "type": "button", "body": {"text": body},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": choice_id(ref, b.id), "title": b.label}}
                    for b in buttons]}}}, choices=tuple(b.label for b in buttons))
        answers = [b for b in buttons if not b.steers]
        steering = [b for b in buttons if b.steers]
        room = MAX_ROWS - len(steering)
        shown = answers[page:page + room]
        if page + room < len(answers):  # more after this page: one row for "Meer…"
            shown = answers[page:page + room - 1]
        rows = [self._row(ref, b) for b in [*shown, *steering]]
        following = page + len(shown)
        if following < len(answers):
            rows.append({"id": choice_id(ref, f"{MORE}{SEPARATOR}{following}"),
                         "title": self.texts.get(lang, "wa_more"),
                         "description": self.texts.get(
                             lang, "wa_more_description", left=len(answers) - following)[
                                 :MAX_ROW_DESCRIPTION]})
        return Call({"type": "interactive", "interactive": {
            "type": "list", "body": {"text": body},
            "action": {"button": self.texts.get(lang, "wa_list_button")[:MAX_LIST_BUTTON],
                       "sections": [{"rows": rows}]}}},
            choices=tuple(str(r["title"]) for r in rows))

    @staticmethod
    def _row(ref: str, button: Button) -> dict[str, Any]:
        row = {"id": choice_id(ref, button.id), "title": shorten(button.label, MAX_ROW_TITLE)}
        if row["title"] != button.label:
            row["description"] = shorten(button.label, MAX_ROW_DESCRIPTION)
        return row

    def template(self, message: Outbound, name: str, language: str) -> Call:
        """An approved template carrying the message's text as its one body parameter."""
        text = message.text
        if message.html:
            with contextlib.suppress(RichTextError):  # validated when queued
                text = parse(message.text, limit=1 << 30).plain()
        return Call({"type": "template", "template": {
            "name": name, "language": {"code": language},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": one_line(text) or "…"}]}]}})
