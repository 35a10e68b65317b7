"""parse_formatted_text: from text in a parse_mode to plain text and MessageEntity dicts.

Plain text and HTML only: the bot sends plain text, and HTML is the parse mode broadcasts will
allow. Markdown and MarkdownV2 are refused (as an unknown parse mode), so that a first use of
them shows up as a refusal in the tests instead of passing unchecked.
"""

from __future__ import annotations

from typing import Any

from .html_markup import parse_html


def parse_formatted_text(text: str, parse_mode: str | None, *,
                         strict_html: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """Turn ``text`` in ``parse_mode`` into (plain text, MessageEntity dicts) like Telegram.

    Raises EntityParseError for markup Telegram refuses and ValueError for a mode the emulator
    does not know (anything but HTML).
    """
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        if "<" not in text and "&" not in text and ">" not in text:
            return text, []
        return parse_html(text, strict_html)
    raise ValueError(parse_mode)
