"""parse_formatted_text: from text in a parse_mode to plain text and MessageEntity dicts."""

from __future__ import annotations

from typing import Any

from .html_markup import parse_html
from .markdown_markup import parse_markdown, parse_markdown_v2


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
        return parse_html(text, strict_html)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise ValueError(parse_mode)
