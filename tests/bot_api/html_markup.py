"""The ``HTML`` parse mode, after tdlib's parser (``MessageEntity.cpp``)."""

from __future__ import annotations

from typing import Any

from .entities import EntityParseError, byte_offset, char_at, is_space, utf16_width


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at ``pos`` (which holds '&') as tdlib does."""
    end = pos + 1
    code = 0
    if char_at(text, end) == "#":
        end += 1
        if char_at(text, end) == "x":
            end += 1
            while char_at(text, end) in "0123456789abcdefABCDEF":
                code = code * 16 + int(text[end], 16)
                end += 1
        else:
            while "0" <= char_at(text, end) <= "9":
                code = code * 10 + int(text[end])
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while char_at(text, end).isascii() and char_at(text, end).isalpha():
            end += 1
        named = {"lt": 60, "gt": 62, "amp": 38, "quot": 34}.get(text[pos + 1:end])
        if named is None:
            return None  # unsupported literal entity: tdlib keeps the '&' as text
        code = named
    if char_at(text, end) == ";":
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


def parse_html(text: str, strict: bool) -> tuple[str, list[dict[str, Any]]]:
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf-16 offset, len(out)
    decoded_surrogate = False

    def offset(index: int) -> int:
        return byte_offset(text, index)

    i = 0
    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                u16 += utf16_width(decoded[0])
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
            u16 += utf16_width(char)
            i += 1
            continue

        begin = i
        i += 1
        if char_at(text, i) != "/":  # a start tag
            while not is_space(char_at(text, i)) and char_at(text, i) != ">":
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset(begin)}")
            tag = text[begin + 1:i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {offset(begin)}')
            argument = ""
            while char_at(text, i) != ">":
                while i < n and is_space(text[i]):
                    i += 1
                if char_at(text, i) == ">":
                    break
                name_begin = i
                while not is_space(char_at(text, i)) and char_at(text, i) not in "=>":
                    i += 1
                name = text[name_begin:i]
                if not name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {offset(begin)}')
                while i < n and is_space(text[i]):
                    i += 1
                value = ""
                if char_at(text, i) == "=":
                    i += 1
                    while i < n and is_space(text[i]):
                        i += 1
                    if i >= n:
                        raise EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset {offset(begin)}')
                    if text[i] not in "'\"":
                        token_begin = i
                        while char_at(text, i).isascii() and (
                                char_at(text, i).isalnum() or char_at(text, i) in ".-"):
                            i += 1
                        value = text[token_begin:i].lower()
                        if not is_space(char_at(text, i)) and char_at(text, i) != ">":
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
        while not is_space(char_at(text, i)) and char_at(text, i) != ">":
            i += 1
        end_name = text[begin + 2:i].lower()
        while i < n and is_space(text[i]):
            i += 1
        if char_at(text, i) != ">":
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
