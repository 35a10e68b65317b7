"""A loopback Telegram Bot API emulator for end-to-end tests (and the benchmark).

The real python-telegram-bot client talks to it over HTTP through ``base_url``; the emulator
answers the way the Bot API does, including its refusals (text too long, markup it cannot
parse, unknown chats, blocked users, flood limits), so that tests catch what production would
reject. Error wording follows the Bot API (and, for the parsers, tdlib's ``MessageEntity.cpp``).

In a test::

    async with BotAPIEmulator() as emu, Bot(emu.token, base_url=emu.base_url,
                                             base_file_url=emu.base_file_url) as bot:
        emu.user_sends_text(42, "/start")
        ...

As a separate process (for the benchmark)::

    python tests/telegram_emulator.py --port 8081

prints ``listening on 127.0.0.1:8081`` once it serves, and runs until killed. That process is
driven over HTTP: ``POST /_emulator/<action>`` with a JSON body naming the arguments of the
method of the same name (``user_sends_text``, ``user_presses``, ``user_blocks_bot``,
``user_unblocks_bot``, ``enqueue_raw_update``, ``set_webhook_target``,
``deliver_pending_webhooks``, ``fail_next``, ``register_chat``), ``GET /_emulator/state`` and
``GET /_emulator/messages_to?chat_id=N`` (bytes are given as ``{"bytes": length}``).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import itertools
import json
import re
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

__all__ = ["BotAPIEmulator", "EntityParseError", "parse_formatted_text", "utf16_len"]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
BLOCKED = "Forbidden: bot was blocked by the user"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

# Update types delivered when allowed_updates was never given (or given as []).
_DEFAULT_UPDATE_TYPES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "inline_query",
    "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query",
    "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_join_request",
    "chat_boost", "removed_chat_boost",
})
_CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
})
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
_SCOPE_TYPES = {
    "default": (), "all_private_chats": (), "all_group_chats": (),
    "all_chat_administrators": (), "chat": ("chat_id",), "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}")
_MENTION_RE = re.compile(r"@[A-Za-z0-9_]{3,32}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def utf16_len(text: str) -> int:
    """The length of ``text`` as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --------------------------------------------------------------------------------------------
# Formatting: HTML, MarkdownV2 and legacy Markdown, after tdlib's parsers
# --------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Markup Telegram would refuse; str(error) is the part after "can't parse entities: "."""


def _at(text: str, index: int) -> str:
    """The character at ``index``, or NUL past the end (tdlib reads a NUL-terminated string)."""
    return text[index] if index < len(text) else "\0"


def _is_space(char: str) -> bool:
    return char in " \t\r\n\0\v\f"


def _width(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at ``pos`` (which holds '&') as tdlib does."""
    end = pos + 1
    code = 0
    if _at(text, end) == "#":
        end += 1
        if _at(text, end) == "x":
            end += 1
            while _at(text, end) in "0123456789abcdefABCDEF":
                code = code * 16 + int(text[end], 16)
                end += 1
        else:
            while "0" <= _at(text, end) <= "9":
                code = code * 10 + int(text[end])
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while _at(text, end).isascii() and _at(text, end).isalpha():
            end += 1
        named = {"lt": 60, "gt": 62, "amp": 38, "quot": 34}.get(text[pos + 1:end])
        if named is None:
            return None  # unsupported literal entity: tdlib keeps the '&' as text
        code = named
    if _at(text, end) == ";":
        end += 1
    return chr(code), end


_HTML_TAGS = frozenset({
    "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
    "span", "pre", "code", "blockquote", "tg-time",
})
_HTML_SIMPLE = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler",
}


def _parse_html(text: str, strict: bool) -> tuple[str, list[dict[str, Any]]]:
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf-16 offset, len(out)
    decoded_surrogate = False

    def offset(index: int) -> int:
        return _byte_offset(text, index)

    i = 0
    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                u16 += _width(decoded[0])
                decoded_surrogate |= 0xD800 <= ord(decoded[0]) <= 0xDFFF
                i = decoded[1]
                continue
            if strict:
                raise EntityParseError(
                    f"Unescaped '&' at byte offset {offset(i)}: write it as &amp; (the Bot API "
                    "docs require it; this is the emulator's strict_html check)")
        if char != "<":
            if strict and char == ">":
                raise EntityParseError(
                    f"Unescaped '>' at byte offset {offset(i)}: write it as &gt; (the Bot API "
                    "docs require it; this is the emulator's strict_html check)")
            out.append(char)
            u16 += _width(char)
            i += 1
            continue

        begin = i
        i += 1
        if _at(text, i) != "/":  # a start tag
            while not _is_space(_at(text, i)) and _at(text, i) != ">":
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset(begin)}")
            tag = text[begin + 1:i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {offset(begin)}')
            argument = ""
            while _at(text, i) != ">":
                while i < n and _is_space(text[i]):
                    i += 1
                if _at(text, i) == ">":
                    break
                name_begin = i
                while not _is_space(_at(text, i)) and _at(text, i) not in "=>":
                    i += 1
                name = text[name_begin:i]
                if not name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {offset(begin)}')
                while i < n and _is_space(text[i]):
                    i += 1
                value = ""
                if _at(text, i) == "=":
                    i += 1
                    while i < n and _is_space(text[i]):
                        i += 1
                    if i >= n:
                        raise EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset {offset(begin)}')
                    if text[i] not in "'\"":
                        token_begin = i
                        while _at(text, i).isascii() and (_at(text, i).isalnum()
                                                          or _at(text, i) in ".-"):
                            i += 1
                        value = text[token_begin:i].lower()
                        if not _is_space(_at(text, i)) and _at(text, i) != ">":
                            raise EntityParseError(
                                f"Unexpected end of name token at byte offset "
                                f"{offset(token_begin)}")
                    else:
                        quote = text[i]
                        i += 1
                        chars: list[str] = []
                        while i < n and text[i] != quote:
                            if text[i] == "&":
                                decoded = _decode_html_entity(text, i)
                                if decoded is not None:
                                    chars.append(decoded[0])
                                    i = decoded[1]
                                    continue
                            chars.append(text[i])
                            i += 1
                        if i < n:
                            i += 1
                        value = "".join(chars)
                if i >= n:
                    raise EntityParseError(f"Unclosed start tag at byte offset {offset(begin)}")
                if tag == "a" and name == "href":
                    argument = value
                elif tag == "code" and name == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif (tag == "tg-emoji" and name == "emoji-id") or (
                        tag == "blockquote" and name == "expandable"):
                    argument = value or "1"
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {offset(begin)}')
            stack.append((tag, argument, u16, len(out)))
            i += 1
            continue

        # an end tag
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {offset(begin)}")
        while not _is_space(_at(text, i)) and _at(text, i) != ">":
            i += 1
        end_name = text[begin + 2:i].lower()
        while i < n and _is_space(text[i]):
            i += 1
        if _at(text, i) != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {offset(begin)}")
        tag, argument, start, out_start = stack.pop()
        if end_name and end_name != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {offset(begin)}, expected "</{tag}>", '
                f'found "</{end_name}>"')
        i += 1
        if u16 == start:
            continue
        entity: dict[str, Any] = {"offset": start, "length": u16 - start}
        if tag in _HTML_SIMPLE:
            entity["type"] = _HTML_SIMPLE[tag]
        elif tag == "tg-emoji":
            if not argument.isdigit() or int(argument) == 0:
                raise EntityParseError("Invalid custom emoji identifier specified")
            entity.update(type="custom_emoji", custom_emoji_id=argument)
        elif tag == "a":
            url = argument or "".join(out[out_start:])
            if not url:
                continue
            entity.update(type="text_link", url=url)
        elif tag == "pre":
            last = entities[-1] if entities else None
            if (last is not None and last["type"] == "code" and last.get("language")
                    and last["offset"] == start and last["length"] == entity["length"]):
                last["type"] = "pre"
                continue
            entity["type"] = "pre"
        elif tag == "code":
            last = entities[-1] if entities else None
            if (last is not None and last["type"] == "pre" and argument
                    and last["offset"] == start and last["length"] == entity["length"]):
                last["language"] = argument
                continue
            entity["type"] = "code"
            if argument:
                entity["language"] = argument  # dropped below unless a <pre> claims it
        elif tag == "blockquote":
            entity["type"] = "expandable_blockquote" if argument else "blockquote"
        else:  # tg-time: accepted, shown as plain text here
            continue
        entities.append(entity)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    result = "".join(out)
    if decoded_surrogate:
        try:
            result.encode("utf-8")
        except UnicodeEncodeError:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, check "
                "for unmatched surrogate code units") from None
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return result, entities


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
    if _at(text, i) != ")":
        raise EntityParseError(
            f"Can't find end of {what} at byte offset {_byte_offset(text, begin)}")
    return "".join(chars), i


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
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
            f"Can't find end of {entry[0]} entity at byte offset {_byte_offset(text, entry[3])}")

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
            u16 += _width(char)
            if char != "\r":
                can_start_blockquote = False
            out.append(char)
            i += 1
            continue

        is_end = False
        if stack:
            top = stack[-1][0]
            nxt = _at(text, i + 1)
            if have_blockquote and char == "\n" and (i + 1 == n or nxt != ">"):
                is_end = True
            elif top == "Bold":
                is_end = char == "*"
            elif top == "Italic":
                is_end = char == "_" and nxt != "_"
            elif top == "Code":
                is_end = char == "`"
            elif top in ("Pre", "PreCode"):
                is_end = char == "`" and nxt == "`" and _at(text, i + 2) == "`"
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
            nxt = _at(text, i + 1)
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
                if nxt == "`" and _at(text, i + 2) == "`":
                    i += 3
                    kind = "Pre"
                    language_end = i
                    while not _is_space(_at(text, language_end)) and _at(
                            text, language_end) != "`":
                        language_end += 1
                    if i != language_end and language_end < n and text[language_end] != "`":
                        kind = "PreCode"
                        argument = text[i:language_end]
                        i = language_end
                    if _at(text, i) in "\n\r":  # one new line right after ``` is skipped
                        if _at(text, i + 1) in "\n\r" and _at(text, i) != _at(text, i + 1):
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
            if _at(text, i + 1) != "(":
                url = "".join(out[entry[4]:])
            else:
                url, i = _md2_url(text, i + 2, "a URL")
            if url:
                argument = url
            else:
                skip = True
        elif kind == "CustomEmoji":
            if _at(text, i + 1) != "(":
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


def _parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The legacy ``Markdown`` parse mode."""
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < n:
        char = text[i]
        if char == "\\" and _at(text, i + 1) in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            u16 += _width(char)
            i += 1
            continue
        begin = i
        end_char = "]" if char == "[" else char
        is_pre = False
        language = ""
        i += 1
        if char == "`" and _at(text, i) == "`" and _at(text, i + 1) == "`":
            i += 2
            is_pre = True
            language_end = i
            while not _is_space(_at(text, language_end)) and _at(text, language_end) != "`":
                language_end += 1
            if i != language_end and language_end < n and text[language_end] != "`":
                language = text[i:language_end]
                i = language_end
            if _at(text, i) in "\n\r":
                if _at(text, i + 1) in "\n\r" and _at(text, i) != _at(text, i + 1):
                    i += 2
                else:
                    i += 1
        start = u16
        while i < n and (text[i] != end_char or (
                is_pre and not (_at(text, i + 1) == "`" and _at(text, i + 2) == "`"))):
            out.append(text[i])
            u16 += _width(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset "
                f"{_byte_offset(text, begin)}")
        if u16 != start:
            entity: dict[str, Any] = {"offset": start, "length": u16 - start}
            if char == "_":
                entity["type"] = "italic"
            elif char == "*":
                entity["type"] = "bold"
            elif char == "[":
                if _at(text, i + 1) == "(":
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


def parse_formatted_text(text: str, parse_mode: str | None, *,
                         strict_html: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """Turn ``text`` in ``parse_mode`` into (plain text, MessageEntity dicts) like Telegram.

    Raises EntityParseError for markup Telegram refuses and ValueError for an unknown mode.
    """
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        if "<" not in text and "&" not in text and ">" not in text:
            return text, []
        return _parse_html(text, strict_html)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode == "markdown":
        return _parse_markdown(text)
    raise ValueError(parse_mode)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, or None when it is neither."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8\xff"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return width, height
            i += 2 + length
    return None


def _photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram keeps of a photo: thumbnails up to the (at most 2560 px) original."""
    sizes: list[tuple[int, int]] = []
    for limit in (90, 320, 800, 1280, 2560):
        scale = min(1.0, limit / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if not sizes or size != sizes[-1]:
            sizes.append(size)
        if scale == 1.0:
            break
    return sizes


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, status: int, description: str,
                 parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass
class _Upload:
    data: bytes
    filename: str | None
    mime_type: str | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None
    filename: str | None
    size: tuple[int, int] | None = None


@dataclass
class _Fault:
    status: int
    description: str
    parameters: dict[str, Any] | None
    times: int


@dataclass
class _Pending:
    update_id: int
    update: dict[str, Any]
    raw: bool = False
    delivered: bool = False


@dataclass
class _Webhook:
    url: str
    secret: str | None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Chat:
    id: int
    first_name: str
    language_code: str | None
    blocked: bool = False
    last_message_id: int = 0
    history: dict[int, dict[str, Any]] = field(default_factory=dict)  # message_id -> record

    @property
    def obj(self) -> dict[str, Any]:
        return {"id": self.id, "first_name": self.first_name, "type": "private"}

    @property
    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user


class _Params:
    """Request parameters from the query string and a JSON, urlencoded or multipart body."""

    __slots__ = ("data", "files")

    def __init__(self, data: dict[str, Any], files: dict[str, _Upload]) -> None:
        self.data = data
        self.files = files

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str, description: str) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _bad(description)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(description) from None

    def get_bool(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, description: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise _bad(description) from None
        return value


def _json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                        status=status, content_type="application/json")


def _jsonable(value: Any) -> Any:
    """``value`` with bytes replaced by their length, for the control API."""
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class BotAPIEmulator:
    """Stands in for api.telegram.org on 127.0.0.1; see the module docstring."""

    def __init__(self, token: str = "123456:TEST-TOKEN", *,
                 bot_username: str = "kiss_coach_test_bot", strict_html: bool = True) -> None:
        bot_id, sep, secret = token.partition(":")
        if not (sep and bot_id.isdigit() and secret):
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        self.bot_username = bot_username
        # Telegram lets a bare '&' or '>' through in HTML; strict_html refuses them, as the docs
        # demand, so that text which only works by luck (an '&copy;' shown raw) is caught.
        self.strict_html = strict_html
        name = bot_username.removesuffix("_bot").removesuffix("bot").replace("_", " ").strip()
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id), "is_bot": True, "first_name": name.title() or "Bot",
            "username": bot_username,
        }
        self.port: int | None = None

        self.sent: list[dict[str, Any]] = []
        self.answered_callbacks: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self._sends: collections.Counter[int] = collections.Counter()
        self._chat_waiters: dict[int, list[tuple[int, asyncio.Future[int]]]] = {}
        #: every update ever made, by update_id (to re-deliver one verbatim)
        self.updates: dict[int, dict[str, Any]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.descriptions: dict[tuple[str, str], str] = {}  # (kind, language_code) -> text

        self._chats: dict[int, _Chat] = {}
        self._queue: collections.deque[_Pending] = collections.deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] = _DEFAULT_UPDATE_TYPES
        self._callbacks: dict[str, dict[str, Any]] = {}  # id -> callback_query, oldest first
        self._callback_ids = itertools.count(4_611_686_018_427_387_904 + 1)
        self._faults: dict[str, collections.deque[_Fault]] = {}
        self._files: dict[str, _StoredFile] = {}  # file_id (every photo size too) -> file
        self._file_ids = itertools.count(1)
        self._webhook: _Webhook | None = None
        self._wakeup: asyncio.Event | None = None
        self._poll_waiting: asyncio.Event | None = None
        self._stored: asyncio.Event | None = None
        self._pollers = 0
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

        handlers: list[tuple[str, Callable[..., Any]]] = [
            ("getMe", self._get_me), ("getUpdates", self._get_updates),
            ("setWebhook", self._set_webhook), ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info), ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageCaption", self._edit_message_caption),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("deleteMessage", self._delete_message),
            ("answerCallbackQuery", self._answer_callback_query),
            ("sendPhoto", self._send_photo), ("sendDocument", self._send_document),
            ("sendChatAction", self._send_chat_action), ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands), ("getFile", self._get_file),
            ("setMyDescription", self._set_description("description")),
            ("getMyDescription", self._get_description("description")),
            ("setMyShortDescription", self._set_description("short_description")),
            ("getMyShortDescription", self._get_description("short_description")),
        ]
        self._methods = {name.lower(): (name, handler) for name, handler in handlers}

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:``port`` (0 picks a free port, see ``port``)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._closing = False
        self._wakeup = asyncio.Event()
        self._poll_waiting = asyncio.Event()
        self._stored = asyncio.Event()
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()  # long polls return at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BotAPIEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port()}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._port()}/file/bot"

    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("start() the emulator first")
        return self.port

    # ---- driving the bot as users do ------------------------------------------------------

    def user_sends_text(self, chat_id: int, text: str, *, first_name: str = "Test",
                        language_code: str | None = "nl") -> int:
        """A private message from user ``chat_id``; returns its update_id.

        A user who had blocked the bot unblocks it by writing ("Restart bot"): as on Telegram,
        a my_chat_member update back to "member" comes first.
        """
        chat = self._user_chat(chat_id, first_name, language_code)
        if chat.blocked:
            self.user_unblocks_bot(chat_id)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat), "from": chat.user, "chat": chat.obj,
            "date": int(time.time()), "text": text,
        }
        command = _BOT_COMMAND_RE.match(text)
        if command is not None:
            end = command.end()
            if _at(text, end) == "@":
                mention = _MENTION_RE.match(text, end)
                end = mention.end() if mention is not None else -1
            if end > 0 and not (text[end:end + 1].isalnum() or _at(text, end) in "_/<>"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": end}]
        chat.history[message["message_id"]] = self._record(
            "user", chat, message, text=text, entities=message.get("entities", []), source=text)
        return self._enqueue({"message": message})

    def user_presses(self, chat_id: int, message_id: int, data: str, *,
                     language_code: str | None = "nl",
                     require_button: bool = True) -> tuple[int, str]:
        """The user presses an inline button with ``data`` under a message the bot sent.

        Returns (update_id, callback_query_id). Unless ``require_button`` is false, the message
        must currently show a button with that callback_data, as it must for a real user.
        """
        chat = self._chats.get(chat_id)
        record = chat.history.get(message_id) if chat is not None else None
        if chat is None or record is None or record["method"] == "user":
            raise ValueError(f"the bot sent no message {message_id} to chat {chat_id}")
        if require_button:
            markup = record["reply_markup"] or {}
            datas = [button.get("callback_data") for row in markup.get("inline_keyboard", [])
                     for button in row]
            if data not in datas:
                raise ValueError(
                    f"message {message_id} in chat {chat_id} has no button with callback_data "
                    f"{data!r} (it has {datas!r})")
        chat.language_code = language_code
        query_id = str(next(self._callback_ids))
        query = {"id": query_id, "from": chat.user, "message": record["message"],
                 "chat_instance": str(chat_id * 1_000_003), "data": data}
        self._callbacks[query_id] = query
        return self._enqueue({"callback_query": query}), query_id

    def user_blocks_bot(self, chat_id: int) -> int:
        """The user blocks the bot: a my_chat_member update, and later sends answer 403."""
        chat = self._user_chat(chat_id)
        chat.blocked = True
        return self._enqueue({"my_chat_member": self._member_update(chat, "member", "kicked")})

    def user_unblocks_bot(self, chat_id: int) -> int:
        chat = self._user_chat(chat_id)
        chat.blocked = False
        return self._enqueue({"my_chat_member": self._member_update(chat, "kicked", "member")})

    def enqueue_raw_update(self, update: dict[str, Any]) -> int:
        """Deliver ``update`` verbatim (same update_id), e.g. to test duplicate handling.

        It is queued in update_id order, and delivered even if an offset already confirmed
        that id, as Telegram re-delivers updates a bot did not get to confirm.
        """
        update_id = update["update_id"]
        self._next_update_id = max(self._next_update_id, update_id + 1)
        pending = _Pending(update_id, update, raw=True)
        index = bisect.bisect_right([p.update_id for p in self._queue], update_id)
        self._queue.insert(index, pending)
        self._wake()
        return update_id

    def register_chat(self, chat_id: int, *, first_name: str = "Test",
                      language_code: str | None = "nl") -> None:
        """Make ``chat_id`` known (as if the user had written before) without an update."""
        self._user_chat(chat_id, first_name, language_code)

    def set_webhook_target(self, url: str | None, secret: str | None) -> None:
        """Deliver updates by POST to ``url`` (None: back to getUpdates), as setWebhook does.

        Nothing is posted until ``deliver_pending_webhooks`` is awaited.
        """
        if url is None:
            self._webhook = None
            return
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise ValueError("secret token: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        self._webhook = _Webhook(url, secret)
        self._wake()  # a waiting getUpdates now answers 409, as Telegram's would

    async def deliver_pending_webhooks(self) -> list[int]:
        """POST every pending update, in order, to the webhook; returns the HTTP statuses.

        Stops at the first answer outside 2xx (that update stays pending, as Telegram retries
        it later); a connection failure counts as status 0.
        """
        webhook = self._webhook
        if webhook is None:
            raise RuntimeError("no webhook is set")
        if urlsplit(webhook.url).hostname not in _LOOPBACK_HOSTS:
            raise RuntimeError(f"refusing to post to {webhook.url}: not a loopback address")
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=30))
        headers = {"X-Telegram-Bot-Api-Secret-Token": webhook.secret} if webhook.secret else {}
        statuses: list[int] = []
        while self._queue and self._webhook is webhook:
            pending = self._queue[0]
            try:
                async with self._session.post(webhook.url, json=pending.update,
                                              headers=headers) as response:
                    status = response.status
                    await response.read()
            except (ClientError, TimeoutError) as error:
                status, message = 0, f"Connection failed: {error.__class__.__name__}"
            else:
                message = f"Wrong response from the webhook: {status} {response.reason}"
            statuses.append(status)
            if not 200 <= status < 300:
                webhook.last_error_date = int(time.time())
                webhook.last_error_message = message
                break
            if self._queue and self._queue[0] is pending:
                self._queue.popleft()
        return statuses

    async def wait_for_long_poll(self) -> None:
        """Return once a getUpdates call is waiting for updates (wrap it in a timeout)."""
        if self._poll_waiting is None:
            raise RuntimeError("start() the emulator first")
        await self._poll_waiting.wait()

    async def wait_for_sent(self, count: int = 1, *,
                            chat_id: int | None = None) -> list[dict[str, Any]]:
        """Wait until ``sent`` holds at least ``count`` records (to ``chat_id``, if given).

        Returns those records. Wrap it in a timeout: it waits for as long as it takes.
        """
        if self._stored is None:
            raise RuntimeError("start() the emulator first")
        while True:
            records = self.sent if chat_id is None else [
                r for r in self.sent if r["chat_id"] == chat_id]
            if len(records) >= count:
                return records
            self._stored.clear()
            await self._stored.wait()

    # ---- what the bot did -----------------------------------------------------------------

    def messages_to(self, chat_id: int, *, include_user: bool = False) -> list[dict[str, Any]]:
        """The bot's messages in that chat as they are now (edits applied, deletions gone)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [r for r in chat.history.values() if include_user or r["method"] != "user"]

    def unanswered_callbacks(self) -> list[str]:
        return [qid for qid in self._callbacks if qid not in self.answered_callbacks]

    @property
    def pending_updates(self) -> int:
        return len(self._queue)

    # ---- fault injection ------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int, description: str = "",
                  retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` ("*": any method) fail with ``status``."""
        parameters = None
        if status == 429:
            retry_after = 5 if retry_after is None else retry_after
            parameters = {"retry_after": retry_after}
            description = description or f"Too Many Requests: retry after {retry_after}"
        elif retry_after is not None:
            parameters = {"retry_after": retry_after}
        if not description:
            description = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                           404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
                           502: "Bad Gateway", 503: "Service Unavailable",
                           504: "Gateway Timeout"}.get(status, "Error")
        self._faults.setdefault(method.lower(), collections.deque()).append(
            _Fault(status, description, parameters, times))

    # ---- internals: updates ---------------------------------------------------------------

    def _user_chat(self, chat_id: int, first_name: str | None = None,
                   language_code: str | None = "nl") -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(chat_id, first_name or "Test", language_code)
        elif first_name is not None:
            chat.first_name = first_name
            chat.language_code = language_code
        return chat

    def _member_update(self, chat: _Chat, old: str, new: str) -> dict[str, Any]:
        def member(status: str) -> dict[str, Any]:
            state: dict[str, Any] = {"user": self._bot_from(), "status": status}
            if status == "kicked":
                state["until_date"] = 0
            return state
        return {"chat": chat.obj, "from": chat.user, "date": int(time.time()),
                "old_chat_member": member(old), "new_chat_member": member(new)}

    def _enqueue(self, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        update = {"update_id": update_id, **body}
        self.updates[update_id] = update
        if next(iter(body)) in self._allowed_updates:
            self._queue.append(_Pending(update_id, update))
            self._wake()
        return update_id

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _confirm(self, offset: int) -> None:
        queue = self._queue
        if offset < 0:
            while len(queue) > -offset:
                queue.popleft()
            return
        while queue and queue[0].update_id < offset and (queue[0].delivered or not queue[0].raw):
            queue.popleft()
        if queue and queue[0].update_id < offset:  # a re-delivered update not yet sent: rare
            self._queue = collections.deque(
                p for p in queue if not (p.update_id < offset and (p.delivered or not p.raw)))

    # ---- internals: HTTP ------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/bot"):
            token, _, method = path[4:].partition("/")
            return await self._api(request, token, method)
        if path.startswith("/file/bot"):
            token, _, file_path = path[9:].partition("/")
            return self._download(token, file_path)
        if path.startswith("/_emulator/"):
            return await self._control(request, path[11:])
        return _json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

    async def _api(self, request: web.Request, token: str, method: str) -> web.StreamResponse:
        entry = self._methods.get(method.lower())
        name = entry[0] if entry is not None else method
        self.calls[name] += 1
        try:
            if token != self.token:
                raise _ApiError(401, "Unauthorized")
            if entry is None:
                raise _ApiError(404, "Not Found")
            fault = self._take_fault(method.lower())
            if fault is not None:
                return self._error(request, name, fault.status, fault.description,
                                   fault.parameters, injected=True)
            params = await self._read_params(request)
            result = entry[1](params)
            if asyncio.iscoroutine(result):
                result = await result
        except _ApiError as error:
            return self._error(request, name, error.status, error.description, error.parameters)
        if isinstance(result, tuple):  # (result, description), as setWebhook answers
            return _json_response({"ok": True, "result": result[0], "description": result[1]})
        return _json_response({"ok": True, "result": result})

    def _take_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            faults = self._faults.get(key)
            if faults:
                fault = faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    faults.popleft()
                return fault
        return None

    def _error(self, request: web.Request, method: str, status: int, description: str,
               parameters: dict[str, Any] | None = None, *,
               injected: bool = False) -> web.Response:
        transport = request.transport
        if transport is not None and not transport.is_closing():  # nobody listens otherwise
            self.errors.append({"method": method, "status": status, "description": description,
                                "injected": injected})
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return _json_response(payload, status)

    async def _read_params(self, request: web.Request) -> _Params:
        data: dict[str, Any] = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        files[key] = _Upload(value.file.read(), value.filename,
                                             value.content_type)
                    else:
                        data[key] = value
            else:
                body = await request.read()
                if body:
                    try:
                        parsed = json.loads(body)
                    except ValueError:
                        raise _bad("can't parse JSON encoded request") from None
                    if not isinstance(parsed, dict):
                        raise _bad("JSON object expected")
                    data.update(parsed)
        return _Params(data, files)

    def _download(self, token: str, file_path: str) -> web.Response:
        if token != self.token:
            return _json_response({"ok": False, "error_code": 401,
                                   "description": "Unauthorized"}, 401)
        for stored in self._files.values():
            if stored.file_path == file_path:
                return web.Response(body=stored.data,
                                    content_type=stored.mime_type or "application/octet-stream")
        return _json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

    async def _control(self, request: web.Request, action: str) -> web.Response:
        """The HTTP face of the driving and inspection methods, for a separate process."""
        args: dict[str, Any] = dict(request.query)
        try:
            if request.can_read_body:
                body = await request.read()
                if body:
                    args.update(json.loads(body))
            if action == "state":
                result: Any = {
                    "calls": dict(self.calls), "errors": self.errors,
                    "sent_count": len(self.sent), "pending_updates": len(self._queue),
                    "unanswered_callbacks": self.unanswered_callbacks(),
                    "answered_callbacks": self.answered_callbacks,
                    "commands": [[list(k), v] for k, v in self.commands.items()],
                }
            elif action == "messages_to":
                result = self.messages_to(int(args["chat_id"]),
                                          include_user=bool(args.get("include_user")))
            elif action == "wait_for_chat":
                chat_id = int(args["chat_id"])
                await self.wait_for_chat(chat_id, int(args["sends"]))
                history = self.messages_to(chat_id)
                result = [{"message_id": r["message_id"], "text": r["text"],
                           "caption": r["caption"], "reply_markup": r["reply_markup"],
                           "photo": r["photo"] is not None}
                          for r in history[int(args.get("since", 0)):]]
            elif action == "deliver_pending_webhooks":
                result = await self.deliver_pending_webhooks()
            elif action in ("user_sends_text", "user_presses", "user_blocks_bot",
                            "user_unblocks_bot", "enqueue_raw_update", "set_webhook_target",
                            "fail_next", "register_chat"):
                result = getattr(self, action)(**args)
            else:
                return _json_response({"ok": False, "description": f"no action {action!r}"}, 404)
        except (ValueError, TypeError, KeyError, RuntimeError) as error:
            return _json_response({"ok": False, "description": repr(error)}, 400)
        return _json_response({"ok": True, "result": _jsonable(result)})

    # ---- internals: shared pieces of the methods ------------------------------------------

    def _bot_from(self) -> dict[str, Any]:
        user = self.bot_user
        return {"id": user["id"], "is_bot": True, "first_name": user["first_name"],
                "username": user["username"]}

    def _next_message_id(self, chat: _Chat) -> int:
        chat.last_message_id += 1
        return chat.last_message_id

    def _chat(self, params: _Params) -> _Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise _bad("chat not found") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if chat.blocked:
            raise _ApiError(403, BLOCKED)
        return chat

    def _formatted(self, params: _Params, text: str, entities_field: str) -> tuple[
            str, list[dict[str, Any]]]:
        entities = params.get_json(entities_field, f"can't parse {entities_field} JSON object")
        if entities:
            if not isinstance(entities, list) or not all(
                    isinstance(e, dict) and {"type", "offset", "length"} <= e.keys()
                    for e in entities):
                raise _bad(f"can't parse {entities_field} JSON object")
            return text, entities
        try:
            return parse_formatted_text(text, params.get_str("parse_mode"),
                                        strict_html=self.strict_html)
        except EntityParseError as error:
            raise _bad(f"can't parse entities: {error}") from None
        except ValueError:
            raise _bad("unsupported parse_mode") from None

    def _text(self, params: _Params) -> tuple[str, str, list[dict[str, Any]]]:
        source = params.get_str("text") or ""
        if not source.strip():
            raise _bad("message text is empty")
        text, entities = self._formatted(params, source, "entities")
        if not text.strip():
            raise _bad("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        return source, text, entities

    def _caption(self, params: _Params) -> tuple[str | None, str | None, list[dict[str, Any]]]:
        source = params.get_str("caption")
        if not source:
            return None, None, []
        caption, entities = self._formatted(params, source, "caption_entities")
        if utf16_len(caption) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        return source, caption or None, entities

    def _reply_markup(self, params: _Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = params.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
        elif inline_only:
            raise _bad("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array')
            for button in itertools.chain.from_iterable(rows):
                text = button if isinstance(button, str) else (
                    button.get("text") if isinstance(button, dict) else None)
                if not isinstance(text, str) or not text.strip():
                    raise _bad("BUTTON_TEXT_INVALID")
        elif markup.get("remove_keyboard") is not True and markup.get("force_reply") is not True:
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup

    def _reply_to(self, chat: _Chat, params: _Params) -> dict[str, Any] | None:
        reply = params.get_json("reply_parameters", "can't parse reply parameters JSON object")
        if reply is None:
            message_id = params.get_int("reply_to_message_id", "message to be replied not found")
            if message_id is None:
                return None
            reply = {"message_id": message_id,
                     "allow_sending_without_reply": params.get_bool("allow_sending_without_reply")}
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise _bad("can't parse reply parameters JSON object")
        record = chat.history.get(reply["message_id"])
        if record is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise _bad("message to be replied not found")
        return record["message"]

    def _record(self, method: str, chat: _Chat, message: dict[str, Any], *,
                text: str | None = None, caption: str | None = None,
                entities: list[dict[str, Any]] | None = None, source: str | None = None,
                reply_markup: dict[str, Any] | None = None, parse_mode: str | None = None,
                photo: bytes | None = None, document: bytes | None = None,
                filename: str | None = None) -> dict[str, Any]:
        return {"method": method, "chat_id": chat.id, "message_id": message["message_id"],
                "text": text, "caption": caption, "entities": entities or [], "source": source,
                "reply_markup": reply_markup, "parse_mode": parse_mode, "photo": photo,
                "document": document, "filename": filename, "message": message}

    def _new_message(self, chat: _Chat, **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat), "from": self._bot_from(),
            "chat": chat.obj, "date": int(time.time()),
        }
        message.update({k: v for k, v in content.items() if v})
        return message

    def _store(self, chat: _Chat, record: dict[str, Any]) -> dict[str, Any]:
        chat.history[record["message_id"]] = record
        self.sent.append(record)
        if self._stored is not None:
            self._stored.set()
        if record["method"].startswith("send"):
            self._sends[chat.id] += 1
            waiters = self._chat_waiters.get(chat.id, [])
            for wanted, future in list(waiters):
                if self._sends[chat.id] >= wanted and not future.done():
                    future.set_result(self._sends[chat.id])
                    waiters.remove((wanted, future))
        return record["message"]

    async def wait_for_chat(self, chat_id: int, sends: int) -> int:
        """Wait until the bot has sent ``sends`` messages (not edits) to ``chat_id`` in all.

        Per-chat and O(1) per message, so a load test with thousands of chats can use it.
        Returns the count reached. Wrap it in a timeout.
        """
        if self._sends[chat_id] >= sends:
            return self._sends[chat_id]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._chat_waiters.setdefault(chat_id, []).append((sends, future))
        return await future

    def _editable(self, params: _Params) -> tuple[_Chat, dict[str, Any]]:
        if params.get("inline_message_id"):
            raise _bad("inline messages are not emulated")
        chat = self._chat(params)
        message_id = params.get_int("message_id", "message identifier is not specified")
        if message_id is None:
            raise _bad("message identifier is not specified")
        record = chat.history.get(message_id)
        if record is None:
            raise _bad("message to edit not found")
        if record["method"] == "user":
            raise _bad("message can't be edited")
        return chat, record

    def _edited(self, chat: _Chat, record: dict[str, Any], method: str,
                markup: dict[str, Any] | None, message_changes: dict[str, Any],
                **record_changes: Any) -> dict[str, Any]:
        """Store the edited state of ``record`` as a new record; return the new Message."""
        message = {k: v for k, v in record["message"].items()
                   if k not in ("reply_markup", "edit_date", *message_changes)}
        message.update({k: v for k, v in message_changes.items() if v})
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return self._store(chat, {**record, **record_changes, "method": method,
                                  "reply_markup": markup, "message": message})

    # ---- the Bot API methods --------------------------------------------------------------

    def _get_me(self, params: _Params) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _get_updates(self, params: _Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise _ApiError(409, WEBHOOK_CONFLICT)
        offset = params.get_int("offset", "wrong parameter offset specified")
        limit = params.get_int("limit", "wrong parameter limit specified") or 100
        timeout = params.get_int("timeout", "wrong parameter timeout specified") or 0
        allowed = params.get_json("allowed_updates", "can't parse allowed_updates JSON object")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise _bad("can't parse allowed_updates JSON object")
            self._allowed_updates = frozenset(allowed) or _DEFAULT_UPDATE_TYPES
        if offset is not None:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        if self._pollers:
            self._wake()  # an older long poll is terminated by this one
        if not self._queue and timeout > 0 and not self._closing:
            await self._long_poll(generation, timeout)
            if generation != self._poll_generation:
                raise _ApiError(409, POLL_CONFLICT)
            if self._webhook is not None:
                raise _ApiError(409, WEBHOOK_CONFLICT)
        batch = list(itertools.islice(self._queue, max(1, min(limit, 100))))
        for pending in batch:
            pending.delivered = True
        return [pending.update for pending in batch]

    async def _long_poll(self, generation: int, seconds: int) -> None:
        assert self._wakeup is not None and self._poll_waiting is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self._pollers += 1
        self._poll_waiting.set()
        try:
            while (not self._queue and not self._closing and self._webhook is None
                   and generation == self._poll_generation):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
        finally:
            self._pollers -= 1
            if not self._pollers:
                self._poll_waiting.clear()

    def _set_webhook(self, params: _Params) -> tuple[bool, str]:
        url = params.get_str("url") or ""
        if not url:
            return self._delete_webhook(params)
        parts = urlsplit(url)
        loopback = parts.hostname in _LOOPBACK_HOSTS
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if not loopback and (parts.port or 443) not in (80, 88, 443, 8443):
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get_str("secret_token") or None
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates", "can't parse allowed_updates JSON object")
        if allowed is not None:
            self._allowed_updates = frozenset(allowed) or _DEFAULT_UPDATE_TYPES
        if params.get_bool("drop_pending_updates"):
            self._queue.clear()
        max_connections = params.get_int("max_connections", "wrong max_connections specified") or 40
        self._webhook = _Webhook(url, secret, max_connections, allowed)
        self._wake()
        return True, "Webhook was set"

    def _delete_webhook(self, params: _Params) -> tuple[bool, str]:
        if params.get_bool("drop_pending_updates"):
            self._queue.clear()
        was_set, self._webhook = self._webhook is not None, None
        return True, "Webhook was deleted" if was_set else "Webhook is already deleted"

    def _get_webhook_info(self, params: _Params) -> dict[str, Any]:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                "pending_update_count": len(self._queue)}
        webhook = self._webhook
        if webhook is not None:
            info.update(url=webhook.url, max_connections=webhook.max_connections,
                        ip_address="127.0.0.1")
            if webhook.allowed_updates:
                info["allowed_updates"] = webhook.allowed_updates
            if webhook.last_error_date is not None:
                info.update(last_error_date=webhook.last_error_date,
                            last_error_message=webhook.last_error_message)
        return info

    def _send_message(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        source, text, entities = self._text(params)
        markup = self._reply_markup(params)
        reply_to = self._reply_to(chat, params)
        preview = params.get_json("link_preview_options", "can't parse link preview options")
        if preview is not None and not isinstance(preview, dict):
            raise _bad("can't parse link preview options")
        message = self._new_message(
            chat, text=text, entities=entities, reply_to_message=reply_to,
            reply_markup=markup if markup and "inline_keyboard" in markup else None,
            link_preview_options=preview)
        return self._store(chat, self._record(
            "sendMessage", chat, message, text=text, entities=entities, source=source,
            reply_markup=markup, parse_mode=params.get_str("parse_mode")))

    def _edit_message_text(self, params: _Params) -> dict[str, Any]:
        chat, record = self._editable(params)
        if record["text"] is None:
            raise _bad("there is no text in the message to edit")
        source, text, entities = self._text(params)
        markup = self._reply_markup(params, inline_only=True)
        if (text, entities, markup) == (record["text"], record["entities"],
                                        _inline(record["reply_markup"])):
            raise _ApiError(400, NOT_MODIFIED)
        return self._edited(chat, record, "editMessageText", markup,
                            {"text": text, "entities": entities}, text=text, entities=entities,
                            source=source, parse_mode=params.get_str("parse_mode"))

    def _edit_message_caption(self, params: _Params) -> dict[str, Any]:
        chat, record = self._editable(params)
        if record["text"] is not None:
            raise _bad("there is no caption in the message to edit")
        source, caption, entities = self._caption(params)
        markup = self._reply_markup(params, inline_only=True)
        if (caption, entities, markup) == (record["caption"], record["entities"],
                                           _inline(record["reply_markup"])):
            raise _ApiError(400, NOT_MODIFIED)
        return self._edited(chat, record, "editMessageCaption", markup,
                            {"caption": caption, "caption_entities": entities},
                            caption=caption, entities=entities, source=source,
                            parse_mode=params.get_str("parse_mode"))

    def _edit_message_reply_markup(self, params: _Params) -> dict[str, Any]:
        chat, record = self._editable(params)
        markup = self._reply_markup(params, inline_only=True)
        if markup == _inline(record["reply_markup"]):
            raise _ApiError(400, NOT_MODIFIED)
        return self._edited(chat, record, "editMessageReplyMarkup", markup, {})

    def _delete_message(self, params: _Params) -> bool:
        chat = self._chat(params)
        message_id = params.get_int("message_id", "message identifier is not specified")
        if message_id is None or chat.history.pop(message_id, None) is None:
            raise _bad("message to delete not found")
        return True

    def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.get_str("callback_query_id")
        if not query_id or query_id not in self._callbacks or query_id in self.answered_callbacks:
            raise _ApiError(400, QUERY_TOO_OLD)
        text = params.get_str("text")
        if text is not None and utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        self.answered_callbacks[query_id] = {
            "text": text, "show_alert": params.get_bool("show_alert"), "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time", "wrong cache_time specified")}
        return True

    def _input_file(self, params: _Params, field_name: str) -> tuple[_Upload, _StoredFile | None]:
        value = params.get(field_name)
        upload = params.files.get(field_name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = params.files.get(value[9:])
            if upload is None:
                raise _bad(f"wrong remote file identifier specified: can't find {value}")
        if upload is not None:
            if not upload.data:
                raise _bad("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise _ApiError(413, "Request Entity Too Large")
            return upload, None
        if isinstance(value, str) and value:
            stored = self._files.get(value)
            if stored is not None:
                return _Upload(stored.data, stored.filename, stored.mime_type), stored
            if value.startswith(("http://", "https://")):
                raise _bad("failed to get HTTP URL content")
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {field_name} in the request")

    def _new_file(self, kind: str, upload: _Upload, extension: str,
                  size: tuple[int, int] | None = None) -> _StoredFile:
        number = next(self._file_ids)
        return _StoredFile(f"{kind[:2].upper()}AC{number:012d}", f"AQAD{number:08d}",
                           upload.data, f"{kind}/file_{number}.{extension}", upload.mime_type,
                           upload.filename, size)

    def _send_photo(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        upload, stored = self._input_file(params, "photo")
        if stored is None:
            size = _image_size(upload.data)
            if size is None or 0 in size:
                raise _bad("IMAGE_PROCESS_FAILED")
            if len(upload.data) > MAX_PHOTO_BYTES:
                raise _ApiError(413, "Request Entity Too Large")
            width, height = size
            if width + height > 10000 or max(width, height) > 20 * min(width, height):
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            extension = "png" if upload.data.startswith(b"\x89PNG") else "jpg"
            stored = self._new_file("photos", upload, extension, size)
        source, caption, entities = self._caption(params)
        markup = self._reply_markup(params)
        assert stored.size is not None
        sizes = _photo_sizes(*stored.size)
        photo = []
        for index, (width, height) in enumerate(sizes):
            file_id = stored.file_id if index == len(sizes) - 1 else f"{stored.file_id}_{index}"
            self._files[file_id] = stored
            share = width * height / (sizes[-1][0] * sizes[-1][1])
            photo.append({"file_id": file_id, "file_unique_id": f"{stored.file_unique_id}{index}",
                          "width": width, "height": height,
                          "file_size": max(1, int(len(stored.data) * share))})
        message = self._new_message(
            chat, photo=photo, caption=caption, caption_entities=entities,
            reply_to_message=self._reply_to(chat, params),
            reply_markup=markup if markup and "inline_keyboard" in markup else None)
        return self._store(chat, self._record(
            "sendPhoto", chat, message, caption=caption, entities=entities, source=source,
            reply_markup=markup, parse_mode=params.get_str("parse_mode"), photo=stored.data,
            filename=stored.filename))

    def _send_document(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        upload, stored = self._input_file(params, "document")
        if stored is None:
            extension = (upload.filename or "").rpartition(".")[2] or "bin"
            stored = self._new_file("documents", upload, extension)
            self._files[stored.file_id] = stored
        source, caption, entities = self._caption(params)
        markup = self._reply_markup(params)
        document: dict[str, Any] = {"file_id": stored.file_id,
                                    "file_unique_id": stored.file_unique_id,
                                    "file_size": len(stored.data)}
        if stored.filename:
            document["file_name"] = stored.filename
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        message = self._new_message(
            chat, document=document, caption=caption, caption_entities=entities,
            reply_to_message=self._reply_to(chat, params),
            reply_markup=markup if markup and "inline_keyboard" in markup else None)
        return self._store(chat, self._record(
            "sendDocument", chat, message, caption=caption, entities=entities, source=source,
            reply_markup=markup, parse_mode=params.get_str("parse_mode"), document=stored.data,
            filename=stored.filename))

    def _get_file(self, params: _Params) -> dict[str, Any]:
        stored = self._files.get(params.get_str("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    def _send_chat_action(self, params: _Params) -> bool:
        chat = self._chat(params)
        action = params.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat.id, action))
        return True

    def _command_key(self, params: _Params) -> tuple[str, str]:
        scope = params.get_json("scope", "can't parse BotCommandScope JSON object")
        if scope is None:
            scope_key = "default"
        else:
            if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES or any(
                    field_name not in scope for field_name in _SCOPE_TYPES[scope["type"]]):
                raise _bad("can't parse BotCommandScope JSON object")
            scope_key = ("default" if scope == {"type": "default"}
                         else json.dumps(scope, sort_keys=True))
        language = params.get_str("language_code") or ""
        if language and not _LANGUAGE_RE.fullmatch(language):
            raise _bad("invalid language code specified")
        return scope_key, language

    def _set_my_commands(self, params: _Params) -> bool:
        commands = params.get_json("commands", "can't parse commands JSON object") or []
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        checked: list[dict[str, str]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand: expected an Object")
            for name in ("command", "description"):
                if name not in command:
                    raise _bad(f'can\'t parse BotCommand: Can\'t find field "{name}"')
                if not isinstance(command[name], str):
                    raise _bad(f'can\'t parse BotCommand: Field "{name}" must be of type String')
            if not _COMMAND_RE.fullmatch(command["command"]):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"].strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            checked.append({"command": command["command"], "description": command["description"]})
        key = self._command_key(params)
        if checked:
            self.commands[key] = checked
        else:
            self.commands.pop(key, None)
        return True

    def _get_my_commands(self, params: _Params) -> list[dict[str, str]]:
        return self.commands.get(self._command_key(params), [])

    def _delete_my_commands(self, params: _Params) -> bool:
        self.commands.pop(self._command_key(params), None)
        return True

    def _set_description(self, kind: str) -> Callable[[_Params], bool]:
        limit = 512 if kind == "description" else 120

        def handler(params: _Params) -> bool:
            text = params.get_str(kind) or ""
            if len(text) > limit:
                raise _bad(f"{kind} is too long")
            key = (kind, params.get_str("language_code") or "")
            if text:
                self.descriptions[key] = text
            else:
                self.descriptions.pop(key, None)
            return True
        return handler

    def _get_description(self, kind: str) -> Callable[[_Params], dict[str, str]]:
        def handler(params: _Params) -> dict[str, str]:
            key = (kind, params.get_str("language_code") or "")
            return {kind: self.descriptions.get(key, "")}
        return handler


def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    return markup if markup and "inline_keyboard" in markup else None


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    count = 0
    for button in itertools.chain.from_iterable(rows):
        count += 1
        if not isinstance(button, dict):
            raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an "
                       "Object")
        text = button.get("text")
        if not isinstance(text, str):
            raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
        if not text.strip():
            raise _bad("BUTTON_TEXT_INVALID")
        # Telegram treats an empty callback_data as none at all.
        actions = [k for k in _BUTTON_ACTIONS if k in button and button[k] not in ("", None, False)]
        if not actions:
            raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                       "inline keyboard")
        if len(actions) > 1:
            raise _bad("can't parse inline keyboard button: exactly one of the optional fields "
                       f"must be used, not {' and '.join(actions)}")
        data = button.get("callback_data")
        if data is not None:
            if not isinstance(data, str):
                raise _bad('can\'t parse inline keyboard button: Field "callback_data" must be '
                           "of type String")
            if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https", "tg", "ton") or not (
                    parts.netloc or parts.scheme in ("tg", "ton")):
                raise _bad("BUTTON_URL_INVALID")
    if count > MAX_INLINE_BUTTONS:
        raise _bad("reply markup is too long")


# --------------------------------------------------------------------------------------------
# As a separate process
# --------------------------------------------------------------------------------------------


async def _serve(port: int, token: str, bot_username: str) -> None:
    emulator = BotAPIEmulator(token, bot_username=bot_username)
    await emulator.start(port)
    print(f"listening on 127.0.0.1:{emulator.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Telegram Bot API emulator")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="kiss_coach_test_bot")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token, args.bot_username))


if __name__ == "__main__":
    main()
