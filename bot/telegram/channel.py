"""Telegram messages out: the outbox sender's channel, and the command menus. It only
translates: an :class:`~flows.messages.Outbound` into Bot API calls, Bot API errors into
the outbox's outcomes (:mod:`bot.delivery.outcomes`). It also downloads a file a person
sent (a coach's photo) for the other channels.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InputFile,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBUserWarning

from bot.delivery.outcomes import (
    DeliveryError,
    MaybeDelivered,
    Media,
    NotDelivered,
    Pace,
    RateLimited,
    Refused,
    Unreachable,
)
from bot.telegram import render
from bot.telegram.request import ResponseLost
from flows.definition import LANGUAGES
from flows.messages import Document, Outbound
from flows.texts import Texts
from handlers.admin import AdminDesk
from handlers.coach import CoachDesk
from storage import roles
from storage.database import Database
from storage.tables import Role

log = logging.getLogger(__name__)

#: Commands in the shopkeeper's menu, in this order; descriptions come from the texts.
SHOPKEEPER_COMMANDS = ("start", "help", "results", "tips", "progress", "restart", "ask",
                       "coach", "language", "privacy", "mydata", "delete", "stop")
ROLE_COMMANDS = {Role.COACH: CoachDesk.COMMANDS, Role.ADMIN: AdminDesk.COMMANDS}
#: Seconds a file download may take (a photo is a few MB at most; a call, 5 s).
FETCH_SECONDS = 30.0

# ``Bot.send_message`` and ``edit_message_text`` turn every response into a full Message
# object, which the bot never reads: on a button press that parsing was a tenth of the CPU.
# Those calls go through ``Bot.do_api_request`` instead (same transport, same errors), and
# PTB's hint to use the typed method is silenced for exactly them.
UNPARSED = ("sendMessage", "editMessageText", "answerCallbackQuery")
warnings.filterwarnings("ignore", category=PTBUserWarning,
                        message=rf"Please use 'Bot\.({'|'.join(UNPARSED)})'")


class TelegramChannel:
    """Sends outbox rows to Telegram chats (the :class:`~bot.delivery.outcomes.Channel`
    protocol) and keeps each coach's and admin's command menu in step with their roles.

    Args:
        bot: An initialized python-telegram-bot ``Bot``.
        texts: The command descriptions.
    """

    #: A file_id the bot received (a coach's photo) sends that file again as is.
    resends_received = True

    def __init__(self, bot: Bot, texts: Texts) -> None:
        self.bot = bot
        self.texts = texts

    async def fetch(self, platform_id: str) -> bytes:
        """The bytes of a file by its file_id (``getFile``, then the file's URL): a coach's
        photo for the people on other channels (the
        :class:`~bot.delivery.outcomes.MediaSource` protocol)."""
        try:
            found = await self.bot.get_file(platform_id)
            return bytes(await found.download_as_bytearray(read_timeout=FETCH_SECONDS))
        except (BadRequest, Forbidden) as exc:  # an unknown file, or over the 20 MB limit
            raise Refused(f"telegram file: {exc.message}") from exc
        except TelegramError as exc:  # nothing was sent: trying again later is harmless
            raise NotDelivered(f"telegram file: {type(exc).__name__}: {exc.message}") from exc
        except RuntimeError as exc:  # no file_path: Telegram will not hand this file out
            raise Refused(f"telegram file: {exc}") from exc

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> list[str]:
        chat_id = int(to)
        if message.notice and message.press and done == 0:
            await pace()  # the pop-up is a call too: after a crash it must not come twice
            try:
                if await self.answer_press(message.press, message.text):
                    return []  # shown as the press's pop-up
            except TelegramError as exc:
                raise _outcome(exc, 0, []) from exc
        if message.delete:
            return await self._delete(chat_id, message.delete, done, pace)
        calls = render.sends(message, media)
        ids: list[str] = []
        for index, call in enumerate(calls):
            if index < done:
                continue  # went out before a retry
            await pace()
            try:
                ids.append(await self._one(chat_id, call))
            except TelegramError as exc:
                raise _outcome(exc, index, ids) from exc
        return ids

    async def _one(self, chat_id: int, call: render.Send) -> str:
        """Make one call; the platform's id of the message it made."""
        if call.photo is not None:
            sent = await self.bot.send_photo(chat_id, call.photo, caption=call.text,
                                             filename=call.filename)
            return str(sent.message_id)
        if call.media is not None:
            return await self._picture(chat_id, call, call.media)
        if call.document is not None:
            sent = await self.bot.send_document(
                chat_id, _file(call.document), caption=call.text or None,
                reply_markup=call.markup, parse_mode="HTML" if call.html else None)
            return str(sent.message_id)
        result = await self.call("sendMessage", chat_id=chat_id, text=call.text,
                                 reply_markup=call.markup,
                                 parse_mode="HTML" if call.html else None)
        return str(result["message_id"])

    async def _delete(self, chat_id: int, ids: tuple[str, ...], done: int,
                      pace: Pace) -> list[str]:
        """Delete earlier messages in this chat, up to 100 per call (deleteMessages, Bot
        API 7.0). A refusal (too old, already gone) is final: the row fails with it."""
        batches = [ids[i:i + render.MAX_DELETE] for i in range(0, len(ids), render.MAX_DELETE)]
        for index, batch in enumerate(batches):
            if index < done:
                continue
            await pace()
            try:
                await self.bot.delete_messages(chat_id, [int(i) for i in batch])
            except TelegramError as exc:
                raise _outcome(exc, index, []) from exc
        return []

    async def _picture(self, chat_id: int, call: render.Send, media: Media) -> str:
        """A stored picture: by the platform's id when known, else uploaded, and the
        largest size's file_id kept on ``media`` for the next recipients."""
        photo: str | InputFile
        if media.platform_id is not None:
            photo = media.platform_id
        elif media.data is not None:
            photo = InputFile(media.data, filename=media.name)
        else:
            raise BadRequest(f"picture {media.id} has neither bytes nor a Telegram file_id")
        sent = await self.bot.send_photo(chat_id, photo, caption=call.text or None,
                                         parse_mode="HTML" if call.html else None,
                                         reply_markup=call.markup)
        if media.platform_id is None and sent.photo:
            media.platform_id = sent.photo[-1].file_id  # the largest size
        return str(sent.message_id)

    async def answer_press(self, press: str, text: str) -> bool:
        """Show ``text`` as the pop-up of a button press; False when the press is too old
        to answer (the caller then sends it as a message)."""
        try:
            await self.call("answerCallbackQuery", callback_query_id=press,
                             text=render.truncate(text, 200))
        except BadRequest as exc:
            log.info("press %s can no longer be answered: %s", press, exc.message)
            return False
        return True

    async def call(self, endpoint: str, **params: Any) -> Any:
        """A Bot API call whose result is read as plain JSON, if at all (see
        :data:`UNPARSED`)."""
        assert endpoint in UNPARSED
        return await self.bot.do_api_request(
            endpoint, api_kwargs={k: v for k, v in params.items() if v is not None})

    # -- command menus ------------------------------------------------------------------

    async def set_commands(self) -> None:
        """The shopkeeper menu per language (and Dutch for everyone else), private chats."""
        scope = BotCommandScopeAllPrivateChats()
        for lang in (None, *LANGUAGES):
            await self.bot.set_my_commands(self._menu(lang or "nl", ()), scope=scope,
                                           language_code=lang)

    async def sync_menus(self, db: Database) -> int:
        """Set the menu of everyone whose roles changed: the shopkeeper commands plus their
        roles' (in their chat only), or back to the common menu when none is left."""
        async with db.transaction() as tx:
            waiting = await roles.menus_to_sync(tx, channel="telegram")
        for person, chat, granted, lang in waiting:
            scope = BotCommandScopeChat(int(chat))
            try:
                if granted:
                    await self.bot.set_my_commands(self._menu(lang, granted), scope=scope)
                else:
                    await self.bot.delete_my_commands(scope=scope)
            except TelegramError as exc:
                log.warning("could not set the menu of chat %s: %s", chat, exc)
                continue
            async with db.transaction() as tx:
                await roles.menu_synced(tx, shopkeeper_id=person)
        return len(waiting)

    def _menu(self, lang: str, granted: frozenset[Role] | tuple[()]) -> list[BotCommand]:
        names = list(SHOPKEEPER_COMMANDS)
        for role in (Role.COACH, Role.ADMIN):
            if role in granted or (role is Role.COACH and Role.ADMIN in granted):
                names.extend(ROLE_COMMANDS[role])
        return [BotCommand(name, self.texts.get(lang, f"cmd_{name}")) for name in names]


def _file(document: Document) -> InputFile:
    """The upload, with the content type the document says (PTB guesses from the name)."""
    if len(document.data) > render.MAX_UPLOAD:
        raise BadRequest(f"the document is over {render.MAX_UPLOAD // 2**20} MB")
    upload = InputFile(document.data, filename=document.name)
    if document.content_type:
        upload.mimetype = document.content_type
    return upload


def _outcome(exc: TelegramError, index: int, ids: list[str]) -> Exception:
    """The outbox's outcome for a Bot API error, after ``index`` calls went through (those
    of this attempt made the messages ``ids``)."""
    outcome = _kind(exc, index)
    outcome.platform_ids = tuple(ids)
    return outcome


def _kind(exc: TelegramError, index: int) -> DeliveryError:
    match exc:
        case RetryAfter():
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            # Telegram does not say which limit it was; pausing everyone is the safe guess.
            return RateLimited(exc.message, retry_after=seconds, progress=index)
        case Forbidden():
            return Unreachable(exc.message, progress=index)
        case BadRequest() | ChatMigrated():
            return Refused(exc.message, progress=index)
        case NetworkError() if "too large" in exc.message.lower():  # a 413: never fits
            return Refused(exc.message, progress=index)
        case TimedOut() | ResponseLost():
            return MaybeDelivered(exc.message, progress=index)
        case NetworkError():  # 5xx, or no connection: it did not arrive
            return NotDelivered(exc.message, progress=index)
        case _:
            return NotDelivered(f"{type(exc).__name__}: {exc.message}", progress=index)
