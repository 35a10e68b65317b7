"""Checking reply_markup (inline keyboards, the only kind the bot sends) as the Bot API does."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlsplit

from .params import Params, bad_request
from .rules import BUTTON_ACTIONS, MAX_CALLBACK_DATA_BYTES, MAX_INLINE_BUTTONS


def read_reply_markup(params: Params) -> dict[str, Any] | None:
    """The request's reply_markup (an inline keyboard), checked; None when it has none.

    Reply keyboards (``keyboard``, ``remove_keyboard``, ``force_reply``) are refused: the bot
    uses none, and a refusal makes a first use show up in the tests rather than pass unchecked.
    """
    markup = params.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
    if markup is None:
        return None
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        raise bad_request("can't parse reply keyboard markup JSON object (the emulator knows "
                          "only inline keyboards)")
    _check_inline_keyboard(markup["inline_keyboard"])
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    count = 0
    for button in itertools.chain.from_iterable(rows):
        count += 1
        if not isinstance(button, dict):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be "
                              "an Object")
        text = button.get("text")
        if not isinstance(text, str):
            raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type '
                              "String")
        if not text.strip():
            raise bad_request("BUTTON_TEXT_INVALID")
        # Telegram treats an empty callback_data as none at all.
        actions = [k for k in BUTTON_ACTIONS if k in button and button[k] not in ("", None, False)]
        if not actions:
            raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in "
                              "the inline keyboard")
        if len(actions) > 1:
            raise bad_request("can't parse inline keyboard button: exactly one of the optional "
                              f"fields must be used, not {' and '.join(actions)}")
        data = button.get("callback_data")
        if data is not None:
            if not isinstance(data, str):
                raise bad_request('can\'t parse inline keyboard button: Field "callback_data" '
                                  "must be of type String")
            if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https", "tg", "ton") or not (
                    parts.netloc or parts.scheme in ("tg", "ton")):
                raise bad_request("BUTTON_URL_INVALID")
    if count > MAX_INLINE_BUTTONS:
        raise bad_request("reply markup is too long")
