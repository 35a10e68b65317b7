"""MessageEntity arithmetic for the HTML parser and commands: UTF-16 lengths, the byte offsets
tdlib names in its errors, and EntityParseError."""

from __future__ import annotations


def utf16_len(text: str) -> int:
    """The length of ``text`` as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class EntityParseError(ValueError):
    """Markup Telegram would refuse; str(error) is the part after "can't parse entities: "."""


def char_at(text: str, index: int) -> str:
    """The character at ``index``, or NUL past the end (tdlib reads a NUL-terminated string)."""
    return text[index] if index < len(text) else "\0"


def is_space(char: str) -> bool:
    return char in " \t\r\n\0\v\f"


def utf16_width(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))
