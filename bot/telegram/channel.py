"""The Telegram channel: updates in, Bot API calls out. It only translates.

Each handler turns one kind of update into an :class:`~handlers.inbound.Inbound` and hands it
to the shopkeeper conversation; :meth:`TelegramChannel.deliver` turns the answer into Bot API
calls. No conversation logic lives here.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    ChatMember,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.app import App
from bot.telegram import render
from flows.definition import LANGUAGES
from flows.messages import Reply
from handlers.inbound import Delivery, Inbound, Report

log = logging.getLogger(__name__)

CHANNEL = "telegram"
#: Commands in the shopkeeper's menu, in this order; descriptions come from the texts.
SHOPKEEPER_COMMANDS = ("start", "help", "results", "restart", "language", "privacy", "stop")
#: How often one message is retried after a 429 before it is left in the outbox.
MAX_RETRIES = 3

Context = ContextTypes.DEFAULT_TYPE
PTBApplication = Application[Any, Any, Any, Any, Any, Any]

# ``Bot.send_message`` and ``edit_message_text`` turn every response into a full Message
# object, which the bot never reads: on a button press that parsing was a tenth of the CPU.
# Those two calls go through ``Bot.do_api_request`` instead (same transport, same errors),
# and PTB's hint to use the typed method is silenced for exactly them.
UNPARSED = ("sendMessage", "editMessageText")
warnings.filterwarnings("ignore", category=PTBUserWarning,
                        message=rf"Please use 'Bot\.({'|'.join(UNPARSED)})'")


class TelegramChannel:
    """Connects one python-telegram-bot ``Application`` to the KI:SS Coach use cases.

    Args:
        app: The built :class:`~bot.app.App`.
        application: A python-telegram-bot application (not yet initialized).
        admin_chat_id: Where the error handler reports problems, if anywhere.
        sleep: How to wait when Telegram answers 429 (``asyncio.sleep``).
    """

    def __init__(self, app: App, application: PTBApplication,
                 admin_chat_id: int | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.app = app
        self.application = application
        self.admin_chat_id = admin_chat_id
        self.sleep = sleep  # injectable, so a test of a 429 does not have to wait
        private = filters.ChatType.PRIVATE
        application.add_handlers([
            ChatMemberHandler(self.on_membership, ChatMemberHandler.MY_CHAT_MEMBER),
            CallbackQueryHandler(self.on_press),
            MessageHandler(private & filters.COMMAND, self.on_command),
            MessageHandler(private & filters.TEXT, self.on_text),
            MessageHandler(private & ~filters.StatusUpdate.ALL, self.on_other),
        ])
        application.add_error_handler(self.on_error)

    # -- updates in ---------------------------------------------------------------------

    async def on_command(self, update: Update, context: Context) -> None:
        """``/start kortrijk`` → command "start", argument "kortrijk"."""
        assert update.effective_message is not None and update.effective_message.text
        word, _, argument = update.effective_message.text[1:].partition(" ")
        command = word.split("@", 1)[0].lower()
        await self._handle(update, command=command, argument=argument.strip())

    async def on_text(self, update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await self._handle(update, reply=Reply(text=update.effective_message.text or ""))

    async def on_other(self, update: Update, context: Context) -> None:
        """Stickers, photos, voice: say kindly that only text works, and ask again."""
        await self._handle(update, reply=Reply(text=""))

    async def on_press(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        parsed = render.parse_callback_data(query.data or "")
        answered = False

        async def deliver(deliveries: list[Delivery]) -> Report:
            nonlocal answered
            notice = next((d for d in deliveries if d.message.notice), None)
            answered = True
            # Three independent calls, so none waits for another's round trip: the pop-up
            # (stops the spinner), the question rewritten with its answer, the next messages.
            side_calls = [_answer(query, render.truncate(notice.message.text, 200)
                                  if notice else None)]
            if notice is None:
                side_calls.append(self._show_choice(query))
            report, _ = await asyncio.gather(
                self.deliver([d for d in deliveries if d is not notice]),
                asyncio.gather(*side_calls))
            if notice is not None:
                report.sent.append(notice)  # shown as the pop-up
            return report

        try:
            if parsed is not None:
                ref, choice = parsed
                await self._handle(update, reply=Reply(choice=choice, ref=ref), deliver=deliver)
        finally:
            if not answered:  # every press is answered, or the button keeps spinning
                await _answer(query, None)

    async def on_membership(self, update: Update, context: Context) -> None:
        """Blocked ("kicked") means: never send them anything; back to "member" undoes it."""
        change = update.my_chat_member
        assert change is not None
        status = change.new_chat_member.status
        if status in (ChatMember.BANNED, ChatMember.MEMBER):
            await self.app.shopkeeper.set_reachable(
                channel=CHANNEL, external_id=str(change.chat.id),
                reachable=status == ChatMember.MEMBER)

    async def _handle(self, update: Update, *, reply: Reply | None = None,
                      command: str | None = None, argument: str = "",
                      deliver: Callable[[list[Delivery]], Awaitable[Report]] | None = None,
                      ) -> None:
        chat = update.effective_chat
        user = update.effective_user
        assert chat is not None
        inbound = Inbound(CHANNEL, str(chat.id), reply=reply, command=command, argument=argument,
                          language_hint=user.language_code if user else None,
                          update_id=str(update.update_id))
        await self.app.shopkeeper.handle(inbound, deliver=deliver or self.deliver)

    # -- messages out -------------------------------------------------------------------

    async def deliver(self, deliveries: list[Delivery]) -> Report:
        """Send in order; stop at a chat that blocked the bot."""
        report = Report([])
        for index, delivery in enumerate(deliveries):
            try:
                for call in render.sends(delivery.message):
                    await self._send(int(delivery.external_id), call)
            except Forbidden as exc:
                log.info("chat %s cannot be reached (%s): opting it out",
                         delivery.external_id, exc.message)
                report.failed = deliveries[index:]
                report.error, report.unreachable = exc.message, True
                break
            report.sent.append(delivery)
        return report

    async def _send(self, chat_id: int, call: render.Send) -> None:
        bot = self.application.bot
        for attempt in range(MAX_RETRIES + 1):
            try:
                if call.photo is not None:
                    await bot.send_photo(chat_id, call.photo, caption=call.text,
                                         filename=call.filename)
                else:
                    await self._call("sendMessage", chat_id=chat_id, text=call.text,
                                     reply_markup=call.markup)
                return
            except RetryAfter as exc:
                if attempt == MAX_RETRIES:
                    raise
                delay = exc.retry_after
                seconds = delay if isinstance(delay, int | float) else delay.total_seconds()
                log.warning("Telegram asks to wait %.0f s before sending to %s", seconds,
                            chat_id)
                await self.sleep(seconds)

    async def _show_choice(self, query: CallbackQuery) -> None:
        """Rewrite the question with the chosen answer under it and drop its keyboard."""
        message = query.message
        if not isinstance(message, Message) or not message.text:
            return  # inaccessible (too old) or not a text message
        markup = message.reply_markup
        label = next((button.text for row in (markup.inline_keyboard if markup else ())
                      for button in row if button.callback_data == query.data), None)
        if label is None:
            return
        try:
            await self._call("editMessageText", chat_id=message.chat_id,
                             message_id=message.message_id,
                             text=render.answered(message.text, label))
        except BadRequest as exc:  # already edited (a double tap), or too old to edit
            log.debug("could not mark the answer on message %s: %s", message.message_id,
                      exc.message)

    async def _call(self, endpoint: str, **params: Any) -> None:
        """A Bot API call whose result is not needed (see :data:`UNPARSED`)."""
        assert endpoint in UNPARSED
        await self.application.bot.do_api_request(
            endpoint, api_kwargs={k: v for k, v in params.items() if v is not None})

    # -- set-up and errors --------------------------------------------------------------

    async def set_commands(self) -> None:
        """The shopkeeper menu per language (and Dutch for everyone else), private chats only."""
        scope = BotCommandScopeAllPrivateChats()
        for lang in (None, *LANGUAGES):
            texts_lang = lang or "nl"
            commands = [BotCommand(name, self.app.texts.get(texts_lang, f"cmd_{name}"))
                        for name in SHOPKEEPER_COMMANDS]
            await self.application.bot.set_my_commands(commands, scope=scope,
                                                       language_code=lang)

    async def on_error(self, update: object, context: Context) -> None:
        """Log first, then tell the user something kind, then the admin chat, if any."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("error while handling update %s", update_id, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            chat_id = update.effective_chat.id
            try:
                lang = await self.app.shopkeeper.language_of(channel=CHANNEL,
                                                             external_id=str(chat_id))
                await context.bot.send_message(chat_id, self.app.texts.get(lang, "error_generic"))
            except Exception:  # the error handler must never raise itself
                log.exception("could not tell chat %s about the error", chat_id)
        if self.admin_chat_id is not None:
            error = context.error
            summary = f"{type(error).__name__}: {error}"[:300] if error else "unknown error"
            try:
                await context.bot.send_message(
                    self.admin_chat_id, f"⚠️ KI:SS Coach: update {update_id}: {summary}")
            except Exception:
                log.exception("could not notify the admin chat")


async def _answer(query: CallbackQuery, text: str | None) -> None:
    """Answer a button press; one from long ago (the bot was down) can no longer be
    answered, which is no reason to bother the user with an error."""
    try:
        await query.answer(text)
    except BadRequest as exc:
        log.info("could not answer button press %s: %s", query.id, exc.message)
