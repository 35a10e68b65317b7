"""The ``MarkdownV2`` and legacy ``Markdown`` parse modes, after tdlib's parsers."""

from __future__ import annotations

import re
from typing import Any

from .entities import EntityParseError, byte_offset, char_at, is_space, utf16_width

_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!\n")
_MD2_TYPES = {
    "Bold": "bold", "Italic": "italic", "Underline": "underline",
    "Strikethrough": "strikethrough", "Spoiler": "spoiler", "Code": "code", "Pre": "pre",
    "PreCode": "pre", "TextUrl": "text_link", "CustomEmoji": "custom_emoji",
    "BlockQuote": "blockquote", "ExpandableBlockQuote": "expandable_blockquote",
}


def _reserved(char: str) -> EntityParseError:
    return EntityParseError(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'")


def _escapable(text: str, index: int) -> bool:
    return index < len(text) and 0 < ord(text[index]) <= 126


def _md2_url(text: str, i: int, what: str) -> tuple[str, int]:
    """Read the ``(...)`` part starting at ``i`` (just after '('); return (url, index of ')')."""
    begin = i
    chars: list[str] = []
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and _escapable(text, i + 1):
            chars.append(text[i + 1])
            i += 2
            continue
        chars.append(text[i])
        i += 1
    if char_at(text, i) != ")":
        raise EntityParseError(
            f"Can't find end of {what} at byte offset {byte_offset(text, begin)}")
    return "".join(chars), i


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    # type, argument, utf-16 offset, index where it began in text, len(out) when it began
    stack: list[list[Any]] = []
    have_blockquote = False
    can_start_blockquote = True

    def unclosed(entry: list[Any]) -> EntityParseError:
        return EntityParseError(
            f"Can't find end of {entry[0]} entity at byte offset {byte_offset(text, entry[3])}")

    i = 0
    while i < n:
        char = text[i]
        if char == "\\" and _escapable(text, i + 1):
            i += 1
            u16 += 1
            out.append(text[i])
            if text[i] != "\r":
                can_start_blockquote = text[i] == "\n"
            i += 1
            continue
        in_code = bool(stack) and stack[-1][0] in ("Code", "Pre", "PreCode")
        if (char != "`") if in_code else (char not in _MD2_RESERVED):
            u16 += utf16_width(char)
            if char != "\r":
                can_start_blockquote = False
            out.append(char)
            i += 1
            continue

        is_end = False
        if stack:
            top = stack[-1][0]
            nxt = char_at(text, i + 1)
            if have_blockquote and char == "\n" and (i + 1 == n or nxt != ">"):
                is_end = True
            elif top == "Bold":
                is_end = char == "*"
            elif top == "Italic":
                is_end = char == "_" and nxt != "_"
            elif top == "Code":
                is_end = char == "`"
            elif top in ("Pre", "PreCode"):
                is_end = char == "`" and nxt == "`" and char_at(text, i + 2) == "`"
            elif top in ("TextUrl", "CustomEmoji"):
                is_end = char == "]"
            elif top == "Underline":
                is_end = char == "_" and nxt == "_"
            elif top == "Strikethrough":
                is_end = char == "~"
            elif top == "Spoiler":
                is_end = char == "|" and nxt == "|"

        if not is_end:
            kind: str | None = None
            argument = ""
            begin = i
            nxt = char_at(text, i + 1)
            if char == "_":
                kind = "Italic"
                if nxt == "_":
                    kind = "Underline"
                    i += 1
            elif char == "*":
                kind = "Bold"
            elif char == "~":
                kind = "Strikethrough"
            elif char == "|":
                if nxt != "|":
                    raise _reserved(char)
                i += 1
                kind = "Spoiler"
            elif char == "[":
                kind = "TextUrl"
            elif char == "`":
                if nxt == "`" and char_at(text, i + 2) == "`":
                    i += 3
                    kind = "Pre"
                    language_end = i
                    while not is_space(char_at(text, language_end)) and char_at(
                            text, language_end) != "`":
                        language_end += 1
                    if i != language_end and language_end < n and text[language_end] != "`":
                        kind = "PreCode"
                        argument = text[i:language_end]
                        i = language_end
                    if char_at(text, i) in "\n\r":  # one new line right after ``` is skipped
                        if (char_at(text, i + 1) in "\n\r"
                                and char_at(text, i) != char_at(text, i + 1)):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "Code"
            elif char == "!":
                if nxt != "[":
                    raise _reserved(char)
                i += 1
                kind = "CustomEmoji"
            elif char == "\n":
                u16 += 1
                out.append("\n")
                can_start_blockquote = True
            elif char == ">":
                if not can_start_blockquote:
                    raise _reserved(char)
                if not have_blockquote:
                    kind = "BlockQuote"
                    have_blockquote = True
            else:
                raise _reserved(char)
            if kind is not None:
                stack.append([kind, argument, u16, begin, len(out)])
            i += 1
            continue

        # the end of an entity
        kind = stack[-1][0]
        if char == "\n" and kind != "BlockQuote":
            top = stack[-1]
            if kind != "Spoiler" or not (top[3] == i - 2 or (
                    top[3] == i - 3 and out and out[-1] == "\r")):
                raise unclosed(top)
            stack.pop()
            if stack[-1][0] != "BlockQuote":
                raise unclosed(stack[-1])
            kind = "ExpandableBlockQuote"
        entry = stack[-1]
        argument = entry[1]
        skip = u16 == entry[2]
        if kind in ("Underline", "Spoiler"):
            i += 1
        elif kind in ("Pre", "PreCode"):
            i += 2
        elif kind == "TextUrl":
            if char_at(text, i + 1) != "(":
                url = "".join(out[entry[4]:])
            else:
                url, i = _md2_url(text, i + 2, "a URL")
            if url:
                argument = url
            else:
                skip = True
        elif kind == "CustomEmoji":
            if char_at(text, i + 1) != "(":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            url, i = _md2_url(text, i + 2, "a custom emoji URL")
            match = re.fullmatch(r"tg://emoji\?id=([0-9]+)", url)
            if match is None:
                raise EntityParseError("Custom emoji URL must have an emoji identifier")
            argument = match.group(1)
        elif kind in ("BlockQuote", "ExpandableBlockQuote"):
            have_blockquote = False
            out.append(text[i])
            can_start_blockquote = True
            u16 += 1
            skip = False
        if not skip:
            entities.append(_md2_entity(kind, argument, entry[2], u16 - entry[2]))
        stack.pop()
        i += 1

    if have_blockquote:
        kind = "BlockQuote"
        if stack[-1][0] == "Spoiler" and stack[-1][3] == n - 2:
            stack.pop()
            kind = "ExpandableBlockQuote"
        if stack[-1][0] == "BlockQuote":
            start = stack.pop()[2]
            if u16 != start:
                entities.append(_md2_entity(kind, "", start, u16 - start))
    if stack:
        raise unclosed(stack[-1])
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _md2_entity(kind: str, argument: str, offset: int, length: int) -> dict[str, Any]:
    entity: dict[str, Any] = {"type": _MD2_TYPES[kind], "offset": offset, "length": length}
    if kind == "PreCode":
        entity["language"] = argument
    elif kind == "TextUrl":
        entity["url"] = argument
    elif kind == "CustomEmoji":
        entity["custom_emoji_id"] = argument
    return entity


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The legacy ``Markdown`` parse mode."""
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < n:
        char = text[i]
        if char == "\\" and char_at(text, i + 1) in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            u16 += utf16_width(char)
            i += 1
            continue
        begin = i
        end_char = "]" if char == "[" else char
        is_pre = False
        language = ""
        i += 1
        if char == "`" and char_at(text, i) == "`" and char_at(text, i + 1) == "`":
            i += 2
            is_pre = True
            language_end = i
            while not is_space(char_at(text, language_end)) and char_at(text, language_end) != "`":
                language_end += 1
            if i != language_end and language_end < n and text[language_end] != "`":
                language = text[i:language_end]
                i = language_end
            if char_at(text, i) in "\n\r":
                if char_at(text, i + 1) in "\n\r" and char_at(text, i) != char_at(text, i + 1):
                    i += 2
                else:
                    i += 1
        start = u16
        while i < n and (text[i] != end_char or (
                is_pre and not (char_at(text, i + 1) == "`" and char_at(text, i + 2) == "`"))):
            out.append(text[i])
            u16 += utf16_width(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset "
                f"{byte_offset(text, begin)}")
        if u16 != start:
            entity: dict[str, Any] = {"offset": start, "length": u16 - start}
            if char == "_":
                entity["type"] = "italic"
            elif char == "*":
                entity["type"] = "bold"
            elif char == "[":
                if char_at(text, i + 1) == "(":
                    url_end = text.find(")", i + 2)
                    url_end = n if url_end < 0 else url_end
                    url = text[i + 2:url_end]
                    i = url_end
                else:
                    url = text[begin + 1:i]
                entity.update(type="text_link", url=url)
            elif is_pre:
                entity["type"] = "pre"
                if language:
                    entity["language"] = language
            else:
                entity["type"] = "code"
            if entity["type"] != "text_link" or entity["url"]:
                entities.append(entity)
        if is_pre:
            i += 2
        i += 1
    return "".join(out), entities
