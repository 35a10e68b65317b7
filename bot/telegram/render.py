"""Turn the engine's messages into what the Bot API accepts, within its limits.

Plain text (no parse mode), so nothing a shopkeeper types or a translator writes can break
entity parsing. Limits are checked here, before sending: Telegram would answer 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.delivery.outcomes import Media
from flows.messages import Button, Document, Outbound
from flows.rich_text import RichTextError, parse

#: Bot API limits (https://core.telegram.org/bots/api): counted in UTF-16 code units.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_UPLOAD = 50 * 1024 * 1024  # bytes of a file sent by upload (sendDocument)
MAX_DELETE = 100  # message ids per deleteMessages call
CALLBACK_SEPARATOR = "|"


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text at paragraph, then line, then word boundaries."""
    if utf16_length(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n", " "):
        parts = text.split(separator)
        if len(parts) > 1:
            chunks: list[str] = []
            current = ""
            for part in parts:
                candidate = f"{current}{separator}{part}" if current else part
                if utf16_length(candidate) <= limit:
                    current = candidate
                    continue
                if current:
                    chunks.append(current)
                current = part
            chunks.append(current)
            return [piece for chunk in chunks for piece in split_text(chunk, limit)]
    cut = limit
    while utf16_length(text[:cut]) > limit:
        cut -= 1
    return [text[:cut], *split_text(text[cut:], limit)]


def truncate(text: str, limit: int) -> str:
    if utf16_length(text) <= limit:
        return text
    while utf16_length(text) > limit - 1:
        text = text[:-1]
    return text + "…"


def callback_data(ref: str, button: Button) -> str:
    data = f"{ref}{CALLBACK_SEPARATOR}{button.id}"
    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
        raise ValueError(f"callback data over {MAX_CALLBACK_DATA} bytes: {data!r}")
    return data


def parse_callback_data(data: str) -> tuple[str, str] | None:
    """``(ref, button id)``, or None for data this bot did not make."""
    ref, separator, button_id = data.partition(CALLBACK_SEPARATOR)
    return (ref, button_id) if separator and ref and button_id else None


def keyboard(message: Outbound) -> InlineKeyboardMarkup | None:
    """Answers one per row (readable on a small phone); steering buttons share the last row."""
    if not message.buttons or message.ref is None:
        return None
    ref = message.ref
    answers = [[InlineKeyboardButton(b.label, callback_data=callback_data(ref, b))]
               for b in message.buttons if not b.steers]
    steering = [InlineKeyboardButton(b.label, callback_data=callback_data(ref, b))
                for b in message.buttons if b.steers]
    return InlineKeyboardMarkup([*answers, steering] if steering else answers)


@dataclass(frozen=True, slots=True)
class Send:
    """One Bot API call: a text (with an optional keyboard), a photo or a document with a
    caption (``text``, may be empty)."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    photo: bytes | None = None
    filename: str = ""
    html: bool = False
    document: Document | None = None
    media: Media | None = None


def visible_length(text: str, html: bool) -> int:
    """What Telegram counts against its limits: the text after entity parsing."""
    if not html:
        return utf16_length(text)
    try:
        return parse(text, limit=1 << 30).length()
    except RichTextError:  # validated before it was queued; count the markup, to be safe
        return utf16_length(text)


def fits_caption(text: str, html: bool) -> bool:
    """Whether ``text`` can be a caption (1024 UTF-16 units once its HTML is parsed)."""
    return visible_length(text, html) <= MAX_CAPTION


def sends(message: Outbound, media: Media | None = None) -> list[Send]:
    """The calls for one message; a long text becomes several, the keyboard on the last.
    ``media``: the stored picture of ``message.photo``."""
    if message.image is not None:
        caption = truncate(message.image.caption or message.text, MAX_CAPTION)
        return [Send(caption, photo=message.image.data, filename=message.image.name)]
    if message.document is not None:
        return _document(message, message.document)
    if media is not None:
        return _photo(message, media)
    return _texts(message)


def _photo(message: Outbound, media: Media) -> list[Send]:
    """The picture with the text as its caption when it fits, else the picture alone and
    the text after it. The same calls whether the picture is uploaded or sent by its
    platform id, so a retry's count of calls done stays right."""
    if not message.text.strip():
        return [Send("", keyboard(message), media=media)]
    if fits_caption(message.text, message.html):
        return [Send(message.text, keyboard(message), html=message.html, media=media)]
    return [Send("", media=media), *_texts(message)]


def _texts(message: Outbound) -> list[Send]:
    if message.html:  # validated to fit one message; splitting could cut a tag in two
        return [Send(message.text, keyboard(message), html=True)]
    chunks = split_text(message.text)
    markup = keyboard(message)
    return [Send(chunk, markup if i == len(chunks) - 1 else None)
            for i, chunk in enumerate(chunks)]


def _document(message: Outbound, document: Document) -> list[Send]:
    """The file with the text as its caption when it fits; else the file (with its own
    short caption, cut to the limit, if it has one) and the text in messages after it."""
    if document.caption:
        caption = truncate(document.caption, MAX_CAPTION)
        rest = message.text
    elif fits_caption(message.text, message.html):
        caption, rest = message.text, ""
    else:
        caption, rest = "", message.text
    head = Send(caption, None if rest.strip() else keyboard(message), document=document,
                html=message.html and caption == message.text)
    if not rest.strip():
        return [head]
    return [head, *_texts(message)]


def answered(question: str, label: str) -> str:
    """The question as it reads once answered: the chosen answer under it, no buttons."""
    return truncate(f"{question}\n\n✅ {label}", MAX_TEXT)
