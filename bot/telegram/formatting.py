"""A coach's formatted Telegram message back to the HTML a broadcast stores.

Telegram delivers formatting as entities (offsets in UTF-16 code units) beside plain text.
Bold, italic and links become ``<b>``, ``<i>`` and ``<a href>``; everything else (code,
spoilers, mentions) stays plain text. The result is checked by :mod:`flows.rich_text` like
anything a coach types.
"""

from __future__ import annotations

import html
from typing import Any

#: Entity type → (opening tag, closing tag); ``text_link`` gets its URL.
_TAGS = {"bold": ("<b>", "</b>"), "italic": ("<i>", "</i>")}


def entities_to_html(text: str, entities: Any) -> str | None:
    """``text`` as HTML with its bold, italic and link entities; None when there are none
    (the text is then read as typed, which may itself hold tags)."""
    if not isinstance(entities, list):
        return None
    units = text.encode("utf-16-le")
    marks: list[tuple[int, int, str, str]] = []  # (start, -end, open, close) in code units
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or length <= 0:
            continue
        if kind in _TAGS:
            opening, closing = _TAGS[str(kind)]
        elif kind == "text_link" and isinstance(entity.get("url"), str):
            opening, closing = f'<a href="{html.escape(entity["url"])}">', "</a>"
        else:
            continue
        marks.append((offset, -(offset + length), opening, closing))
    if not marks:
        return None
    marks.sort()
    # Walk the text in code units, opening and closing tags at their offsets. Entities
    # Telegram sends nest properly or are disjoint; an overlap is closed and reopened.
    out: list[str] = []
    stack: list[tuple[int, str, str]] = []  # (end, open, close)
    position = 0
    events = sorted({0, len(units) // 2, *(s for s, _, _, _ in marks),
                     *(-e for _, e, _, _ in marks)})
    pending = list(marks)
    for point in events:
        if point > position:
            out.append(html.escape(units[position * 2:point * 2].decode("utf-16-le"),
                                   quote=False))
            position = point
        reopen: list[tuple[int, str, str]] = []
        while stack and any(end <= point for end, _, _ in stack):
            end, opening, closing = stack.pop()
            out.append(closing)
            if end > point:
                reopen.append((end, opening, closing))
        for end, opening, closing in reversed(reopen):
            out.append(opening)
            stack.append((end, opening, closing))
        while pending and pending[0][0] == point:
            _, negative_end, opening, closing = pending.pop(0)
            out.append(opening)
            stack.append((-negative_end, opening, closing))
    for _, _, closing in reversed(stack):
        out.append(closing)
    return "".join(out)
