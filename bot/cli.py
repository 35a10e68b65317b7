"""``kiss-coach``: run the bot, chat in the terminal, check flows, migrate the database.

    kiss-coach run            # Telegram when TELEGRAM_BOT_TOKEN is set, else the terminal chat
    kiss-coach chat           # the terminal chat (also reads piped answers, one per line)
    kiss-coach flows check    # validate every flow; exit 1 with file:line [node]: reason
    kiss-coach db upgrade     # apply database migrations
    kiss-coach roles grant coach --user telegram:123456   # also: revoke, list
    kiss-coach roles invite coach --bot KissCoachBot   # a one-time link to the role
    kiss-coach tips preview --user telegram:123456   # the person's next 5 tips, and when
    kiss-coach broadcast send --text "…" --segment municipality=Kortrijk   # also: status, cancel
    kiss-coach stats          # the funnel and average scores per municipality, k-anonymous
    kiss-coach stats --llm    # questions to the AI coach this month, tokens, budget left
    kiss-coach export --what answers --format xlsx   # also: --since, --pseudonymize, …
    kiss-coach audit --since 2026-11-01   # who exported or changed what


    kiss-coach llm usage      # questions and tokens this month, and the budget left

Each command imports what it needs when it runs (the bot, the charts, the language model
take seconds to import): ``kiss-coach export`` starts in a fraction of the time ``run`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import exports, logs
from bot.config import ConfigError, Settings
from flows.audience import KEYS as SEGMENT_KEYS
from flows.insight import BASES, DIMENSIONS
from flows.loader import FlowError
from flows.timing import BRUSSELS
from storage import roles, shopkeepers
from storage.database import Database
from storage.sqlite_guard import AlreadyServingError
from storage.tables import Role

if TYPE_CHECKING:
    from handlers.broadcasts import Broadcasts
    from handlers.stats import Report

#: The flows, texts and tips shipped with the bot (``bot.app.FLOWS_DIR``, without
#: importing the whole app for it).
FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"

log = logging.getLogger("kiss_coach")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"kiss-coach: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    # The Bot API puts the token in every URL: no handler may ever write it.
    logs.hide(settings.telegram_token, settings.webhook_secret)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for chatty in ("alembic", "apscheduler"):  # every job run at INFO: noise in a chat
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    try:
        result: int = args.func(args, settings)
    except FlowError as exc:
        print(f"kiss-coach: the flows have errors, not starting:\n{exc}", file=sys.stderr)
        return 1
    except AlreadyServingError as exc:
        print(f"kiss-coach: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiss-coach", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (Telegram with a token, else terminal)")
    run.set_defaults(func=_run)
    run.add_argument("--replace-webhook", action="store_true",
                     help="in polling mode, delete a webhook that is set (another deployment "
                          "may be using it; without this the bot refuses to start)")
    _chat_options(run)

    chat = commands.add_parser("chat", help="chat with the bot in this terminal")
    chat.set_defaults(func=_chat)
    _chat_options(chat)

    flows = commands.add_parser("flows", help="flow definitions")
    flows_commands = flows.add_subparsers(required=True, metavar="ACTION")
    check = flows_commands.add_parser("check", help="validate all flows and texts")
    check.add_argument("directory", nargs="?", type=Path, default=FLOWS_DIR)
    check.set_defaults(func=_flows_check)

    roles_parser = commands.add_parser("roles", help="who is a coach or an admin")
    roles_commands = roles_parser.add_subparsers(required=True, metavar="ACTION")
    for action, text in (("grant", "give a person a role"), ("revoke", "take a role away")):
        sub = roles_commands.add_parser(action, help=text)
        sub.add_argument("role", choices=[r.value for r in Role])
        sub.add_argument("--user", required=True, type=_address,
                         help="the person as CHANNEL:ID, e.g. telegram:123456")
        sub.set_defaults(func=_roles_change, action=action)
    roles_commands.add_parser("list", help="everyone with a role").set_defaults(
        func=_roles_list)
    invite = roles_commands.add_parser(
        "invite", help="a one-time link to a role (works once, for 7 days)")
    invite.add_argument("role", choices=[r.value for r in Role])
    invite.add_argument("--bot", default=os.environ.get("TELEGRAM_BOT_USERNAME"),
                        metavar="USERNAME", help="the bot's Telegram username, for the link "
                        "(default: $TELEGRAM_BOT_USERNAME)")
    invite.set_defaults(func=_roles_invite)

    tips = commands.add_parser("tips", help="the coaching plan's tips")
    tips_commands = tips.add_subparsers(required=True, metavar="ACTION")
    preview = tips_commands.add_parser("preview", help="a person's next 5 tips, and when")
    preview.add_argument("--user", required=True, type=_address,
                         help="the person as CHANNEL:ID, e.g. telegram:123456")
    preview.set_defaults(func=_tips_preview)

    broadcast = commands.add_parser("broadcast", help="coach broadcasts")
    broadcast_commands = broadcast.add_subparsers(required=True, metavar="ACTION")
    send = broadcast_commands.add_parser(
        "send", help="send a message to a segment of shopkeepers",
        description="Bold, italic and links as Telegram HTML: <b>…</b>, <i>…</i>, "
                    '<a href="https://…">…</a>. Segment keys: ' + ", ".join(SEGMENT_KEYS))
    send.add_argument("--text", required=True, help="the message (Dutch, or the one language)")
    for lang in ("en", "fr"):
        send.add_argument(f"--text-{lang}", help=f"the same message in {lang}")
    send.add_argument("--photo", type=Path, metavar="PATH",
                      help="a JPEG or PNG sent with it (the text is its caption when it fits)")
    send.add_argument("--segment", action="append", default=[], metavar="KEY=VALUE",
                      help="who receives it (repeat: different keys all apply, one key's "
                           "values are alternatives); none: everyone")
    send.add_argument("--at", type=_moment, help="when (ISO 8601, Brussels time unless "
                                                 "an offset is given); default now")
    send.add_argument("--urgent", action="store_true",
                      help="also outside the sending hours (nights, Sundays, holidays)")
    send.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    send.add_argument("--no-wait", action="store_true",
                      help="queue it and return; do not follow its progress")
    send.set_defaults(func=_broadcast_send)
    status = broadcast_commands.add_parser("status", help="recent broadcasts, or one")
    status.add_argument("id", nargs="?", type=int)
    status.set_defaults(func=_broadcast_status)
    resend = broadcast_commands.add_parser(
        "resend", help="send again to those it may not have reached (after a crash; some "
                       "will see it twice)")
    resend.add_argument("id", type=int)
    resend.set_defaults(func=_broadcast_resend)
    cancel = broadcast_commands.add_parser("cancel", help="stop a scheduled or running one")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=_broadcast_cancel)
    delete = broadcast_commands.add_parser(
        "delete", help="delete a sent one from the chats (Telegram allows it for 48 hours)")
    delete.add_argument("id", type=int)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_broadcast_delete)

    _stats_options(commands.add_parser(
        "stats", help="the funnel and average scores per theme, municipality, "
                      "arrondissement and shop type (groups under 5 shops folded)"))

    exports.add_commands(commands, actor=lambda: f"cli:{_login()}")


    llm = commands.add_parser("llm", help="the language model answering questions")
    llm.add_subparsers(required=True, metavar="ACTION").add_parser(
        "usage", help="questions and tokens this month, and the budget left").set_defaults(
        func=_llm_usage)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(func=_db_upgrade)
    db_commands.add_parser("current", help="show the schema revision").set_defaults(
        func=_db_current)
    return parser


def _chat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=None,
                        help="who you are in the chat (default: your login name)")
    parser.add_argument("--lang", choices=["nl", "en", "fr"], default=None,
                        help="language to start in (default: nl)")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import serve  # only pulled in when it is used

    if serve.wanted(settings):
        return serve.run(settings, replace_webhook=args.replace_webhook)
    log.info("no channel is configured (TELEGRAM_BOT_TOKEN is not set): "
             "starting the terminal chat")
    return _chat(args, settings)


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build
    from bot.console import ConsoleChat

    async def chat() -> None:
        app = await build(settings)
        try:
            await ConsoleChat(app, user=args.user or _login(), lang=args.lang).run()
        finally:
            await app.close()

    asyncio.run(chat())
    return 0


def _flows_check(args: argparse.Namespace, settings: Settings) -> int:
    from flows.loader import load_library
    from flows.texts import Texts
    from flows.tips import load_tips

    flows = load_library(args.directory)
    Texts.load(args.directory / "texts")
    library = load_tips(args.directory / "tips", args.directory / "data" / "calendar.toml")
    for flow in flows.values():
        questions = len(flow.questions())
        print(f"ok  {flow.path}: {flow.id} {flow.version} ({flow.digest}), "
              f"{len(flow.nodes)} nodes, {questions} questions")
    print(f"ok  {args.directory / 'texts'}: nl, en, fr")
    print(f"ok  {args.directory / 'tips'}: {len(library.tips)} tips, "
          f"{len(library.seasons)} calendar moments")
    return 0


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The database at the newest schema, closed afterwards (a CLI command's whole life)."""
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.close()


def _tips_preview(args: argparse.Namespace, settings: Settings) -> int:
    from flows.tips import load_tips
    from handlers.nudges import upcoming_tips
    from storage import coaching, due
    from storage.tables import DueKind

    channel, external_id = args.user
    library = load_tips(FLOWS_DIR / "tips", FLOWS_DIR / "data" / "calendar.toml")

    async def preview() -> str:
        async with _database(settings) as db, db.transaction() as tx:
            person = await shopkeepers.find_by_identity(tx, channel=channel,
                                                        external_id=external_id)
            if person is None:
                return f"nobody known as {channel}:{external_id}"
            found = (await coaching.recipients(tx, [person.id]))[person.id]
            first = await due.when(tx, shopkeeper_id=person.id, kind=DueKind.TIP)
        if found.opted_out or first is None or found.plan is None:
            return f"{channel}:{external_id} gets no tips (no plan, tips off, or /stop)"
        lines = [f"{at.astimezone(BRUSSELS):%a %Y-%m-%d %H:%M}  {tip.theme:14} {tip.id:24} "
                 f"{tip.action[found.language][:60]}"
                 for at, tip in upcoming_tips(library, settings.schedule, found, first)]
        return "\n".join(lines) or "no tips left that fit this person"

    print(asyncio.run(preview()))
    return 0


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async def upgrade() -> None:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            print(f"database at revision {await db.revision()}")
        finally:
            await db.close()

    asyncio.run(upgrade())
    return 0


def _db_current(args: argparse.Namespace, settings: Settings) -> int:
    from storage.database import head_revision

    async def current() -> None:
        db = Database(settings.database_url)
        try:
            print(f"database at {await db.revision()}, newest is {head_revision()}")
        finally:
            await db.close()

    asyncio.run(current())
    return 0


def _address(text: str) -> tuple[str, str]:
    """``telegram:123456`` → ("telegram", "123456"): how the CLI names a person."""
    channel, separator, external_id = text.partition(":")
    if not (separator and channel.isalpha() and channel.islower() and external_id
            and len(external_id) <= 64):
        raise argparse.ArgumentTypeError(f"{text!r} is not CHANNEL:ID, e.g. telegram:123456")
    return channel, external_id


def _roles_change(args: argparse.Namespace, settings: Settings) -> int:
    channel, external_id = args.user

    async def change() -> bool:
        async with _database(settings) as db, db.transaction() as tx:
            person, _ = await shopkeepers.find_or_create(
                tx, channel=channel, external_id=external_id, language="nl")
            if args.action == "grant":
                return await roles.grant(tx, shopkeeper_id=person.id, role=Role(args.role),
                                         by=f"cli:{_login()}")
            return await roles.revoke(tx, shopkeeper_id=person.id, role=Role(args.role),
                                      by=f"cli:{_login()}")

    changed = asyncio.run(change())
    done = "granted to" if args.action == "grant" else "revoked from"
    if changed:
        print(f"{args.role} {done} {channel}:{external_id}; their command menu follows "
              "within a minute")
    else:
        print(f"nothing to do: {channel}:{external_id} "
              f"{'already has' if args.action == 'grant' else 'does not have'} {args.role}")
    return 0


def _roles_list(args: argparse.Namespace, settings: Settings) -> int:
    async def listing() -> list[tuple[str, str, Role, str]]:
        async with _database(settings) as db, db.transaction() as tx:
            return await roles.everyone(tx)

    granted = asyncio.run(listing())
    for channel, external_id, role, by in granted:
        print(f"{role.value:6} {channel}:{external_id}  (granted by {by})")
    if not granted:
        print("no coaches or admins yet: kiss-coach roles grant coach --user telegram:ID")
    return 0


def _roles_invite(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.admin import invite_link
    from storage import invites

    async def create() -> str:
        async with _database(settings) as db, db.transaction() as tx:
            return await invites.create(tx, role=Role(args.role), via=f"cli:{_login()}")

    code = asyncio.run(create())
    if args.bot:
        print(invite_link(args.bot, code))
    else:
        print(f"invite code: {code}\nthe person sends the bot: /start {invites.payload(code)}\n"
              "(for a t.me link: --bot USERNAME or TELEGRAM_BOT_USERNAME)")
    print(f"one {args.role}, works once, expires in {invites.LIFETIME.days} days")
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def _moment(text: str) -> datetime:
    """ISO 8601; without an offset it is Brussels time (what a coach means)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time like "
                                         "2026-12-01T09:30") from None
    return moment.replace(tzinfo=BRUSSELS) if moment.tzinfo is None else moment


def _sending(settings: Settings, db: Database) -> Broadcasts:
    from flows.places import gazetteer
    from flows.texts import Texts
    from handlers.broadcasts import Broadcasts

    class _NoSender:
        def wake(self) -> None:
            """The bot's own sender finds the rows: it polls the outbox."""

    return Broadcasts(db, Texts.load(FLOWS_DIR / "texts"), gazetteer(),
                      settings.schedule.hours, _NoSender())


def _broadcast_send(args: argparse.Namespace, settings: Settings) -> int:
    from flows.audience import Segment, SegmentError
    from flows.pictures import PictureError, picture
    from flows.places import gazetteer
    from flows.rich_text import RichText, RichTextError
    from flows.rich_text import parse as parse_rich_text

    try:
        texts: dict[str, RichText] = {"nl": parse_rich_text(args.text)}
        for lang in ("en", "fr"):
            if getattr(args, f"text_{lang}"):
                texts[lang] = parse_rich_text(getattr(args, f"text_{lang}"))
        segment = Segment.parse(args.segment, gazetteer())
        photo = picture(args.photo.read_bytes(), args.photo.name) if args.photo else None
    except (RichTextError, SegmentError, PictureError, OSError) as exc:
        print(f"kiss-coach: {exc}", file=sys.stderr)
        return 2

    async def send() -> int:
        async with _database(settings) as db:
            sending = _sending(settings, db)
            reach = len(await sending.audience(segment))
            print(f"{reach} recipients ({segment.describe()})")
            answer = "y" if args.yes else await asyncio.to_thread(input, "send? [y/N] ")
            if answer.strip().lower() not in ("y", "yes", "j", "ja"):
                print("not sent")
                return 1
            media_id = await sending.attach(photo) if photo is not None else None
            made = await sending.create(texts=texts, segment=segment, send_at=args.at,
                                        urgent=args.urgent, via=f"cli:{_login()}",
                                        media_id=media_id)
            queued = await sending.tick()
            if not queued:
                print(f"broadcast #{made.id} scheduled for "
                      f"{made.send_at.astimezone(BRUSSELS):%Y-%m-%d %H:%M} (Brussels), "
                      "within the sending hours unless --urgent")
                return 0
            print(f"broadcast #{made.id}: {queued} messages queued; the running bot sends "
                  "them (kiss-coach run)")
            if not args.no_wait:
                await _follow(sending, made.id, queued)
            return 0

    return asyncio.run(send())


async def _follow(sending: Broadcasts, broadcast_id: int, total: int) -> None:
    """A progress bar (queued → sent) until every message is final; Ctrl-C stops watching,
    not sending."""
    last = None
    while True:
        counts = await sending.counts(broadcast_id)
        done = total - counts.queued
        width = 30
        bar = "#" * (width * done // max(total, 1))
        line = (f"[{bar:<{width}}] {done}/{total}  sent {counts.sent}  failed {counts.failed}"
                f"  unreachable {counts.unreachable}  uncertain {counts.uncertain}")
        if line != last:
            print("\r" + line, end="", flush=True)
            last = line
        if counts.queued == 0:
            print()
            return
        await asyncio.sleep(0.5)


def _broadcast_status(args: argparse.Namespace, settings: Settings) -> int:
    async def status() -> None:
        async with _database(settings) as db:
            sending = _sending(settings, db)
            chosen = await sending.recent(50)
            if args.id is not None:
                chosen = [b for b in chosen if b.id == args.id]
            for made in chosen:
                counts = await sending.counts(made.id)
                text = next(iter(made.texts.values()))
                when = made.send_at.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M")
                print(f"#{made.id} {made.status:9} {when}  {made.recipients} recipients  "
                      f"queued {counts.queued}  sent "
                      f"{counts.sent}  failed {counts.failed}  unreachable "
                      f"{counts.unreachable}  uncertain {counts.uncertain}  cancelled "
                      f"{counts.cancelled}  {text[:40]!r}"
                      + (f"  ({made.next_day_rows} went on a later day: WhatsApp's daily "
                         f"tier)" if made.next_day_rows else ""))
            if not chosen:
                print("no broadcasts yet" if args.id is None else f"no broadcast #{args.id}")

    asyncio.run(status())
    return 0


def _broadcast_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async def cancel() -> bool:
        async with _database(settings) as db:
            return await _sending(settings, db).cancel(args.id)

    if asyncio.run(cancel()):
        print(f"broadcast #{args.id} cancelled: what had not gone out yet does not")
        return 0
    print(f"broadcast #{args.id} is not scheduled or running", file=sys.stderr)
    return 1


def _broadcast_resend(args: argparse.Namespace, settings: Settings) -> int:
    async def resend() -> int:
        async with _database(settings) as db:
            return await _sending(settings, db).resend_uncertain(args.id)

    queued = asyncio.run(resend())
    print(f"broadcast #{args.id}: {queued} uncertain messages queued again")
    return 0


def _broadcast_delete(args: argparse.Namespace, settings: Settings) -> int:
    async def delete() -> int:
        async with _database(settings) as db:
            sending = _sending(settings, db)
            counts = await sending.counts(args.id)
            print(f"broadcast #{args.id} reached {counts.sent + counts.uncertain} chats")
            answer = "y" if args.yes else await asyncio.to_thread(
                input, "delete it from their chats? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes", "j", "ja"):
                print("not deleted")
                return 1
            deletion = await sending.delete_from_chats(args.id)
            if deletion is None:
                print(f"broadcast #{args.id} does not exist or was deleted already",
                      file=sys.stderr)
                return 1
            print(f"broadcast #{args.id}: deletion queued for {deletion.queued} chats; "
                  f"{deletion.too_old} are older than 48 hours and stay")
            return 0

    return asyncio.run(delete())


def _stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=["nl", "en", "fr"], default="nl",
                        help="language of the tables (default: nl)")
    parser.add_argument("--round", choices=BASES, default="latest", dest="basis",
                        help="which check of each shop counts: its latest (default) or its "
                             "first (T0)")
    parser.add_argument("--cross", type=_dimensions, metavar="ROWS,COLUMNS",
                        help="also a table of two of: " + ", ".join(DIMENSIONS)
                             + " (e.g. shop_type,team_size); a cell of few shops is hidden")
    parser.add_argument("--llm", action="store_true",
                        help="instead: questions to the AI coach this month, how they were "
                             "answered, tokens and the budget left (as `llm usage`)")
    parser.set_defaults(func=_stats)


def _dimensions(text: str) -> tuple[str, str]:
    rows, _, columns = text.partition(",")
    if rows == columns or rows not in DIMENSIONS or columns not in DIMENSIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: two different ones of {', '.join(DIMENSIONS)}, e.g. shop_type,team_size")
    return rows, columns


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    """The same figures as /stats, as tables; the view is written to the audit trail.
    With ``--llm`` the language model's figures instead (:func:`_llm_usage`)."""
    if args.llm:
        return _llm_usage(args, settings)
    from flows.loader import load_library
    from flows.places import gazetteer
    from flows.texts import Texts
    from handlers.stats import StatsView

    view = StatsView(Texts.load(FLOWS_DIR / "texts"), load_library(FLOWS_DIR), gazetteer())

    async def gather() -> Report:
        async with _database(settings) as db, db.transaction() as tx:
            return await view.gather(tx, actor=f"cli:{_login()}", via="cli",
                                     basis=args.basis, cross=args.cross)

    print(view.table(asyncio.run(gather()), args.lang))
    return 0


def _llm_usage(args: argparse.Namespace, settings: Settings) -> int:
    """This month's questions (Brussels time), how they were answered, the tokens spent and
    what is left of the monthly budget."""
    from storage import questions

    async def usage() -> str:
        now = datetime.now(BRUSSELS)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        async with _database(settings) as db, db.transaction() as tx:
            spent = await questions.usage(tx, since=month)
        llm = settings.llm
        model = llm.model if llm.api_key else "none (OPENAI_API_KEY not set: tips only)"
        left = max(llm.monthly_tokens - spent.tokens, 0)
        return "\n".join([
            f"month            {month:%Y-%m} (since {month:%Y-%m-%d %H:%M %Z})",
            f"model            {model}",
            f"questions        {spent.questions} ({spent.by_ai} by the model, "
            f"{spent.by_tips} from the tips, {spent.coach_requests} asked for a coach)",
            f"tokens           {spent.tokens} ({spent.prompt_tokens} prompt, "
            f"{spent.completion_tokens} completion)",
            f"budget left      {left} of {llm.monthly_tokens}",
            f"daily quota      {llm.daily_questions} questions per person"])

    print(asyncio.run(usage()))
    return 0
