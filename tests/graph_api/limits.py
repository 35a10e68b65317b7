"""The Cloud API's documented limits and error codes, and the checks of a message body.

The checks here need nothing of the emulator's state but the approved templates (passed
in); the 24-hour window and media ids are checked where that state lives (the emulator's
``_check`` and ``media.py``). A check that fails raises :class:`RefusalError`, which the
emulator answers the way the Graph API does.
"""

from __future__ import annotations

import re
from typing import Any

VERSION = "v23.0"
WINDOW_SECONDS = 24 * 3600

#: Documented limits of interactive messages (Cloud API reference, "Interactive object").
MAX_TEXT = 4096
MAX_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_LIST_BUTTON = 20
MAX_HEADER = 60
MAX_FOOTER = 60
MAX_CAPTION = 1024
#: A template parameter may not hold these (error 132018).
_BAD_PARAMETER = re.compile(r"[\n\t]| {5,}")

#: Error codes and what Meta calls them.
ERRORS = {
    190: "Invalid OAuth access token",
    100: "Invalid parameter",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132018: "There was an issue with the parameters in your template",
    131053: "Media upload error",
}


class RefusalError(Exception):
    """A call the Cloud API refuses: HTTP status and Graph error code."""

    def __init__(self, code: int, details: str, status: int = 400) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.status = status


def check_length(text: Any, limit: int, what: str, required: bool = True) -> None:
    """Refuse ``text`` (called ``what``) when missing, blank or longer than ``limit``."""
    if text is None and not required:
        return
    if not isinstance(text, str) or (required and not text.strip()):
        raise RefusalError(100, f"{what} is required")
    if len(text) > limit:
        raise RefusalError(100, f"{what} is longer than {limit} characters")


def check_text(part: Any, _: str) -> None:
    """A text message's ``text`` object."""
    check_length((part or {}).get("body"), MAX_TEXT, "text.body")


def check_interactive(part: Any, _: str) -> None:
    """An ``interactive`` object: reply buttons or a list."""
    if not isinstance(part, dict):
        raise RefusalError(100, "interactive is required")
    check_length(part.get("body", {}).get("text"), MAX_BODY, "body.text")
    header = part.get("header")
    if header is not None:
        check_length(header.get("text"), MAX_HEADER, "header.text")
    footer = part.get("footer")
    if footer is not None:
        check_length(footer.get("text"), MAX_FOOTER, "footer.text")
    action = part.get("action") or {}
    if part.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= MAX_BUTTONS:
            raise RefusalError(100, f"buttons: between 1 and {MAX_BUTTONS}")
        ids, titles = set(), set()
        for button in buttons:
            reply = button.get("reply") or {}
            check_length(reply.get("title"), MAX_BUTTON_TITLE, "button title")
            check_length(reply.get("id"), MAX_BUTTON_ID, "button id")
            if reply["id"] in ids or reply["title"] in titles:
                raise RefusalError(100, "button ids and titles must be unique")
            ids.add(reply["id"])
            titles.add(reply["title"])
    elif part.get("type") == "list":
        check_length(action.get("button"), MAX_LIST_BUTTON, "action.button")
        sections = action.get("sections") or []
        rows = [row for section in sections for row in section.get("rows") or []]
        if not sections or not 1 <= len(rows) <= MAX_ROWS:
            raise RefusalError(100, f"a list has between 1 and {MAX_ROWS} rows")
        if len(sections) > 1:
            for section in sections:
                check_length(section.get("title"), MAX_ROW_TITLE, "section title")
        ids = set()
        for row in rows:
            check_length(row.get("title"), MAX_ROW_TITLE, "row title")
            check_length(row.get("id"), MAX_ROW_ID, "row id")
            check_length(row.get("description"), MAX_ROW_DESCRIPTION, "row description",
                         required=False)
            if row["id"] in ids:
                raise RefusalError(100, "row ids must be unique")
            ids.add(row["id"])
    else:
        raise RefusalError(100, "interactive type must be button or list")


def check_template(part: Any, templates: dict[str, tuple[frozenset[str], int]]) -> None:
    """A ``template`` object, against ``templates`` (name → approved languages and the
    number of body parameters)."""
    if not isinstance(part, dict):
        raise RefusalError(100, "template is required")
    known = templates.get(str(part.get("name")))
    language = (part.get("language") or {}).get("code")
    if known is None or language not in known[0]:
        raise RefusalError(132001, f"template {part.get('name')!r} ({language}) does not exist")
    parameters = [p for c in part.get("components") or [] if c.get("type") == "body"
                  for p in c.get("parameters") or []]
    if len(parameters) != known[1]:
        raise RefusalError(132000, f"expected {known[1]} parameters, got {len(parameters)}")
    for parameter in parameters:
        text = parameter.get("text")
        if not isinstance(text, str) or not text or _BAD_PARAMETER.search(text):
            raise RefusalError(132018, "a parameter may not be empty nor hold new lines, "
                                  "tabs or more than 4 consecutive spaces")
