"""The tables, as SQLModel classes. Every timestamp is UTC-aware.

Identity is per channel (``identity``): a Telegram chat id today, a WhatsApp number later,
both pointing at one person (``shopkeeper``: everyone is one; some are also coach or admin,
``person_role``). Received updates are rows (``inbox``) stored before the platform is told
they arrived; outbound messages are rows (``outbox``) written in the same transaction as the
state change that caused them. Between the two, nothing said either way is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is UTC-aware on the way in and out, SQLite included."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware timestamps only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None,
                             dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Shopkeeper(SQLModel, table=True):
    """A person using the bot, with their profile. Personal fields stay empty until consent."""

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(default="nl", max_length=5)
    language_chosen: bool = False
    consent_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    consent_version: str | None = Field(default=None, max_length=40)
    shop_name: str | None = Field(default=None, max_length=80)
    municipality: str | None = Field(default=None, max_length=40, index=True)
    municipality_input: str | None = Field(default=None, max_length=80)
    shop_type: str | None = Field(default=None, max_length=20)
    team_size: str | None = Field(default=None, max_length=10)
    # Two different facts: what the person asked (/stop, /start) and what the platform says
    # (blocked, deactivated). Unblocking clears the second and never the first.
    opted_out_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    unreachable_since: datetime | None = Field(default=None, sa_type=UtcDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    #: When the person last sent anything (a message, a command, a button), to the day:
    #: retention counts inactivity from here (see :mod:`handlers.retention`).
    last_active_at: datetime | None = Field(default=None, sa_type=UtcDateTime(), index=True)
    #: When the person was told their data will be erased for inactivity; any activity
    #: clears it.
    retention_notice_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class Identity(SQLModel, table=True):
    """How a channel knows a shopkeeper: (``telegram``, chat id), (``console``, name), …"""

    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class FlowSnapshot(SQLModel, table=True):
    """The exact text of every flow version a run has started on, so it can be rebuilt."""

    __tablename__ = "flow_snapshot"

    key: str = Field(primary_key=True, max_length=60)
    flow_id: str = Field(max_length=32)
    version: str = Field(max_length=40)
    source: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class RunStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class Run(SQLModel, table=True):
    """One pass of one shopkeeper through one flow, pinned to the flow version it began on."""

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    flow_id: str = Field(max_length=32)
    flow_key: str = Field(max_length=60)
    status: str = Field(default=RunStatus.ACTIVE, max_length=10)
    state: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class AssessmentResult(SQLModel, table=True):
    """The scores of one completed assessment; the re-assessment compares against these."""

    __tablename__ = "assessment_result"

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    run_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False))
    flow_key: str = Field(max_length=60)
    scores: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    overall: int
    #: The focus themes named in the result (tips start there); None on results from before
    #: they were stored.
    focus: list[str] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class Role(StrEnum):
    """What a person may do besides being a shopkeeper (everyone is one)."""

    COACH = "coach"
    ADMIN = "admin"


class PersonRole(SQLModel, table=True):
    """A role granted to a person, by whom (``cli``, ``env``, ``telegram:ID``) and when."""

    __tablename__ = "person_role"

    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            primary_key=True))
    role: str = Field(primary_key=True, max_length=10)
    granted_by: str = Field(max_length=80)
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class MenuSync(SQLModel, table=True):
    """A person whose command menu must be set again on the platform (a role changed)."""

    __tablename__ = "menu_sync"

    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            primary_key=True))
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class OutboxStatus(StrEnum):
    """``queued → claimed → sending → sent``; ``errored`` waits for a retry; the rest are
    final. ``claimed`` is not yet tried (safe to give back after a crash); ``sending`` is
    written just before the platform call (after a crash it may or may not have arrived)."""

    QUEUED = "queued"
    CLAIMED = "claimed"  # a sender's until ``lease_until``, not tried yet
    SENDING = "sending"  # the platform call is under way
    SENT = "sent"
    ERRORED = "errored"  # surely not delivered; retried at ``next_attempt_at``
    FAILED = "failed"  # given up, with the reason in ``error``
    UNCERTAIN = "uncertain"  # may or may not have arrived; never resent blindly


#: Statuses that hold back a chat's later messages (per-chat order).
UNFINISHED = (OutboxStatus.QUEUED, OutboxStatus.CLAIMED, OutboxStatus.SENDING,
              OutboxStatus.ERRORED)


OPEN_CONDITION = "status IN ('queued', 'claimed', 'sending', 'errored')"


class OutboxKind(StrEnum):
    """Replies go before bulk messages (tips, broadcasts) and may be resent once."""

    REPLY = "reply"
    BULK = "bulk"


class OutboxMessage(SQLModel, table=True):
    """A message to deliver: recorded first, sent after, with the reason when it fails."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "next_attempt_at"),
        # The per-chat order check looks only at unfinished rows: a small partial index.
        sa.Index("ix_outbox_chat_open", "channel", "external_id", "id",
                 postgresql_where=sa.text(OPEN_CONDITION),
                 sqlite_where=sa.text(OPEN_CONDITION)),
        sa.UniqueConstraint("broadcast_id", "shopkeeper_id", name="uq_outbox_broadcast_person"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: None for a last word to someone who refused consent: deleted once it is out.
    shopkeeper_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=True))
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    image: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    kind: str = Field(default=OutboxKind.REPLY, max_length=10)
    status: str = Field(default=OutboxStatus.QUEUED, max_length=10)
    #: False once the row may go out after later ones (a chart that could not be drawn).
    ordered: bool = True
    attempts: int = 0
    #: Platform calls of this message already made (a long text is several), so a retry
    #: never repeats a part that arrived.
    progress: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime())
    #: The sender (see ``sender_process``) that claimed it: when that sender is gone, the
    #: row is not waited for until the lease ends.
    claimed_by: str | None = Field(default=None, max_length=40)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    #: The broadcast this row delivers (one row per broadcast and person: a retried enqueue
    #: never doubles a message).
    broadcast_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=True))
    #: The platform's ids of the messages this row became (Telegram message ids, one per
    #: call), so a broadcast sent by mistake can be deleted from the chats.
    platform_ids: list[str] | None = Field(default=None, sa_type=sa.JSON)


class BroadcastStatus(StrEnum):
    """``scheduled`` (waits for ``send_at`` and the sending hours) → ``sending`` (its
    outbox rows are queued) → ``done`` (every row final, the coach told); or ``cancelled``."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """A message a coach sends to a segment of shopkeepers."""

    id: int | None = Field(default=None, primary_key=True)
    #: The coach who sent it (None: from the command line, see ``created_via``).
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"),
                            nullable=True))
    created_via: str = Field(max_length=80)
    #: The validated text per language (Telegram HTML: <b>, <i>, <a href>).
    texts: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    #: Who receives it: segment key → accepted values (see :mod:`flows.audience`).
    segment: dict[str, list[str]] = Field(default_factory=dict, sa_type=sa.JSON)
    #: Sent outside the sending hours too (a closure, a warning).
    urgent: bool = False
    status: str = Field(default=BroadcastStatus.SCHEDULED, max_length=10)
    send_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)
    recipients: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    #: A photo sent with the text (the text is its caption when it fits).
    media_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("media.id", ondelete="SET NULL"), nullable=True))
    #: When the coach asked to delete it from the chats (delete rows are queued then).
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    #: Rows WhatsApp's daily tier held for a later day, counted when the coach was told
    #: (set once, by the process whose conditional UPDATE flipped it); None: none held.
    next_day_rows: int | None = None


class Media(SQLModel, table=True):
    """A picture sent with broadcasts: the bytes once, and each platform's id for it after
    the first upload (Telegram's ``file_id``), so 2,000 recipients cost one upload."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    content_type: str = Field(max_length=40)
    name: str = Field(max_length=80)
    #: None when the picture came from a platform and only its id is known.
    data: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    #: Channel name → the platform's id to send the picture by (after an upload, or a
    #: Telegram file_id received from a coach).
    platform_ids: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    #: Where a picture without bytes came from: the channel and its id there, to fetch
    #: the bytes from when another channel needs them (a WhatsApp id received from a coach
    #: is only this: it cannot be sent again).
    origin_channel: str | None = Field(default=None, max_length=20)
    origin_id: str | None = Field(default=None, max_length=200)


class BroadcastDraft(SQLModel, table=True):
    """The broadcast a coach is composing in chat, one per coach: which step they are on
    and what they chose so far. It becomes a :class:`Broadcast` when confirmed."""

    __tablename__ = "broadcast_draft"

    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            primary_key=True))
    step: str = Field(max_length=20)
    texts: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    segment: dict[str, list[str]] = Field(default_factory=dict, sa_type=sa.JSON)
    media_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("media.id", ondelete="SET NULL"), nullable=True))
    send_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    urgent: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class AuditEntry(SQLModel, table=True):
    """Who looked at or changed what: exports, stats views, role changes, erasures.

    ``actor`` is written out (``telegram:123``, ``cli:login``), not a foreign key: the
    entry outlives the person's erasure. Nothing in chat deletes these rows."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    #: What exactly: the filters of an export, the role granted, how many rows erased.
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored (and acknowledged to the platform), not yet handled
    DONE = "done"
    POISON = "poison"  # cannot be handled: skipped, kept for a look


class InboxUpdate(SQLModel, table=True):
    """A received update, stored before the platform is told it arrived.

    The unique (channel, key) is also the dedupe: a redelivered update is not stored twice.
    ``chat`` is who it is about (the isolation key); ``seq`` orders one chat's updates.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        sa.UniqueConstraint("channel", "key"),
        sa.Index("ix_inbox_pending", "status", "channel", "chat", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    key: str = Field(max_length=100)
    chat: str | None = Field(default=None, max_length=64)
    seq: int = Field(sa_type=sa.BigInteger)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default=InboxStatus.PENDING, max_length=10)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)
    handled_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class RatePause(SQLModel, table=True):
    """A 429 seen by any process: nothing goes to ``scope`` (a channel, or channel:chat)
    until ``until``. Every sender reads these, so one process's 429 pauses them all."""

    __tablename__ = "rate_pause"

    scope: str = Field(primary_key=True, max_length=90)
    until: datetime = Field(sa_type=UtcDateTime())


class SenderProcess(SQLModel, table=True):
    """A live sender (one per bot process): the overall rate is shared among them."""

    __tablename__ = "sender_process"

    id: str = Field(primary_key=True, max_length=40)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)


class Cadence(StrEnum):
    """How often a person wants a tip."""

    WEEKLY = "weekly"
    TWICE = "twice"  # twice a week
    OFF = "off"


class CoachingPlan(SQLModel, table=True):
    """A person's choice about tips: how often, and at what moment of the day."""

    __tablename__ = "coaching_plan"

    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            primary_key=True))
    cadence: str = Field(default=Cadence.WEEKLY, max_length=10)
    #: ``morning``, ``afternoon`` or ``evening`` (see :data:`flows.timing.MOMENTS`).
    moment: str | None = Field(default=None, max_length=10)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class DueKind(StrEnum):
    """What a due row will send."""

    TIP = "tip"  # the next tip of the plan
    LATER = "later"  # a tip the person asked to see again ("later"); subject: the tip id
    CHECK_IN = "check_in"  # how did this week's action go? subject: the commitment id
    REMINDER = "reminder"  # come back to the check you left; subject: the run id
    REASSESS = "reassess"  # time to do the check again


class Due(SQLModel, table=True):
    """Something to send one person at ``due_at``: the database is the truth of what is
    due (no per-person scheduler jobs). One row per (person, kind, subject); a tick claims
    due rows and moves them to their next time, or deletes them, in the same transaction
    as the outbox rows it records."""

    __tablename__ = "due"
    __table_args__ = (sa.UniqueConstraint("shopkeeper_id", "kind", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            nullable=False))
    kind: str = Field(max_length=10)
    subject: str = Field(default="", max_length=40)
    due_at: datetime = Field(sa_type=UtcDateTime(), index=True)
    #: How many times this row has gone out (the 2nd reminder, the 5th tip).
    count: int = 0
    #: The tick that handled the row last (for operators).
    claimed_by: str | None = Field(default=None, max_length=40)


class TipOutcome(StrEnum):
    DONE = "done"
    LATER = "later"
    NOT_FOR_ME = "not_for_me"


class TipSent(SQLModel, table=True):
    """A tip that went to a person (never the same one twice), and what they said of it."""

    __tablename__ = "tip_sent"
    __table_args__ = (sa.UniqueConstraint("shopkeeper_id", "tip_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            nullable=False))
    tip_id: str = Field(max_length=24)
    theme: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    outcome: str | None = Field(default=None, max_length=12)
    outcome_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class CommitmentOutcome(StrEnum):
    DONE = "done"
    BUSY = "busy"  # still working on it
    DROPPED = "dropped"
    REPLACED = "replaced"  # another action was chosen before the check-in


class Commitment(SQLModel, table=True):
    """"Deze week doe ik …": one action a person picked for the week, and how it went."""

    __tablename__ = "commitment"

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    #: ``tip:<id>`` or ``result:<question id>``: where the action came from.
    source: str = Field(max_length=40)
    #: The action as the person read it, in their language.
    what: str = Field(max_length=400)
    chosen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    outcome: str | None = Field(default=None, max_length=10)
    outcome_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class Invite(SQLModel, table=True):
    """A one-time link that gives a role to whoever opens it first, until it expires.

    ``code`` is the secret in the link (``?start=invite_<code>``); ``used_at`` set means
    spent, even when the person who used it is deleted since."""

    code: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=10)
    #: The admin who made it (None: from the command line, see ``created_via``).
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"),
                            nullable=True))
    created_via: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    expires_at: datetime = Field(sa_type=UtcDateTime())
    used_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"),
                            nullable=True))
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime())



class QuestionSource(StrEnum):
    AI = "ai"  # the language model answered
    TIPS = "tips"  # found in the tip library (no model, its failure, budget or quota)


class QuestionStatus(StrEnum):
    ASKED = "asked"  # recorded; the answer is on its way
    ANSWERED = "answered"
    COACH_REQUESTED = "coach_requested"  # "Spreek met een coach" pressed under the answer


class Question(SQLModel, table=True):
    """A shopkeeper's question to the coach, its answer and what the answer cost.

    Personal data: it goes with the person (``ondelete CASCADE``)."""

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    asked_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)
    text: str = Field(sa_type=sa.Text)
    answer: str | None = Field(default=None, sa_type=sa.Text)
    source: str | None = Field(default=None, max_length=10)
    model: str | None = Field(default=None, max_length=80)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    status: str = Field(default=QuestionStatus.ASKED, max_length=20)
    #: The one-time notice that answers come from an AI went with this question.
    ai_notice: bool = False


# The Core tables behind the classes, for the storage functions' explicit statements
# (SQLModel types ``__table__`` loosely, hence the one cast here).
SHOPKEEPER: sa.Table = Shopkeeper.__table__  # type: ignore[attr-defined]
IDENTITY: sa.Table = Identity.__table__  # type: ignore[attr-defined]
FLOW_SNAPSHOT: sa.Table = FlowSnapshot.__table__  # type: ignore[attr-defined]
RUN: sa.Table = Run.__table__  # type: ignore[attr-defined]
RESULT: sa.Table = AssessmentResult.__table__  # type: ignore[attr-defined]
OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
INBOX: sa.Table = InboxUpdate.__table__  # type: ignore[attr-defined]
PERSON_ROLE: sa.Table = PersonRole.__table__  # type: ignore[attr-defined]
MENU_SYNC: sa.Table = MenuSync.__table__  # type: ignore[attr-defined]
RATE_PAUSE: sa.Table = RatePause.__table__  # type: ignore[attr-defined]
SENDER_PROCESS: sa.Table = SenderProcess.__table__  # type: ignore[attr-defined]
COACHING_PLAN: sa.Table = CoachingPlan.__table__  # type: ignore[attr-defined]
DUE: sa.Table = Due.__table__  # type: ignore[attr-defined]
TIP_SENT: sa.Table = TipSent.__table__  # type: ignore[attr-defined]
COMMITMENT: sa.Table = Commitment.__table__  # type: ignore[attr-defined]
BROADCAST: sa.Table = Broadcast.__table__  # type: ignore[attr-defined]
INVITE: sa.Table = Invite.__table__  # type: ignore[attr-defined]
MEDIA: sa.Table = Media.__table__  # type: ignore[attr-defined]
BROADCAST_DRAFT: sa.Table = BroadcastDraft.__table__  # type: ignore[attr-defined]
AUDIT: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]


class TicketStatus(StrEnum):
    """``open`` (waits for a coach) → ``claimed`` (one coach owns it) → ``closed``."""

    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class Ticket(SQLModel, table=True):
    """A shopkeeper who asked for a human coach: the first coach to claim it owns it."""

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    #: What they asked (or that they asked to be contacted), as they wrote it.
    question: str = Field(max_length=2000)
    status: str = Field(default=TicketStatus.OPEN, max_length=10, index=True)
    coach_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"),
                            nullable=True))
    #: The owning coach's first name as their app gave it ("Coach An: …").
    coach_name: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    #: The last message either way; after 7 silent days the ticket counts as closed.
    active_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class TicketMessage(SQLModel, table=True):
    """One message of a ticket's conversation, either way (exportable, erased with the
    shopkeeper)."""

    __tablename__ = "ticket_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("ticket.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    from_coach: bool = False
    text: str = Field(max_length=4000)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class TicketPost(SQLModel, table=True):
    """A message about a ticket in a coach's chat or the coaches' group (the request, a
    relayed message): a coach who replies to it on the platform answers that ticket. The
    platform's message ids are on the outbox row once it is sent."""

    __tablename__ = "ticket_post"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("ticket.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    outbox_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("outbox.id", ondelete="CASCADE"), index=True,
                            nullable=False))


TICKET: sa.Table = Ticket.__table__  # type: ignore[attr-defined]
TICKET_POST: sa.Table = TicketPost.__table__  # type: ignore[attr-defined]
TICKET_MESSAGE: sa.Table = TicketMessage.__table__  # type: ignore[attr-defined]


QUESTION: sa.Table = Question.__table__  # type: ignore[attr-defined]


# -- WhatsApp (migration 0011) -----------------------------------------------------------


class WhatsAppWindow(SQLModel, table=True):
    """When a WhatsApp number last wrote: free-form messages may reach it for 24 hours
    after (the customer-service window). Erased with the person (by address)."""

    __tablename__ = "whatsapp_window"

    channel: str = Field(default="whatsapp", primary_key=True, max_length=20)
    external_id: str = Field(primary_key=True, max_length=64)
    last_inbound_at: datetime = Field(sa_type=UtcDateTime())


class WhatsAppReach(SQLModel, table=True):
    """Who a business-initiated (template) message reached on a day (UTC): a person takes
    one slot of the day's tier (:class:`WhatsAppTier`), however many templates they get."""

    __tablename__ = "whatsapp_reach"

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"),
                            primary_key=True))


class WhatsAppReceipt(SQLModel, table=True):
    """What WhatsApp said became of an outbox row: sent, delivered, read, or failed with
    its error code (status webhooks). Goes with the row."""

    __tablename__ = "whatsapp_receipt"

    outbox_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True))
    status: str = Field(max_length=10)
    error: str | None = Field(default=None, max_length=300)
    at: datetime = Field(sa_type=UtcDateTime())


class WhatsAppPace(SQLModel, table=True):
    """When a bulk message (a tip, a broadcast) last went to a WhatsApp number: the pair
    rate allows the next one ``pair_seconds`` later. Claimed with one conditional upsert,
    so two processes never both send. Erased with the person (by address)."""

    __tablename__ = "whatsapp_pace"

    channel: str = Field(default="whatsapp", primary_key=True, max_length=20)
    external_id: str = Field(primary_key=True, max_length=64)
    last_bulk_at: datetime = Field(sa_type=UtcDateTime())


class WhatsAppTier(SQLModel, table=True):
    """How many of a day's (UTC) unique-recipient slots templates used. A slot is claimed
    with a conditional increment before the send; erasing a person does not give it back
    (Meta counted them that day)."""

    __tablename__ = "whatsapp_tier"

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD
    reached: int = 0


WHATSAPP_WINDOW: sa.Table = WhatsAppWindow.__table__  # type: ignore[attr-defined]
WHATSAPP_PACE: sa.Table = WhatsAppPace.__table__  # type: ignore[attr-defined]
WHATSAPP_TIER: sa.Table = WhatsAppTier.__table__  # type: ignore[attr-defined]
WHATSAPP_REACH: sa.Table = WhatsAppReach.__table__  # type: ignore[attr-defined]
WHATSAPP_RECEIPT: sa.Table = WhatsAppReceipt.__table__  # type: ignore[attr-defined]


class DashboardLogin(SQLModel, table=True):
    """A one-time login link to the dashboard, sent in a coach's or admin's chat. Only a
    hash of the link's token is kept: a copy of the database opens no session."""

    __tablename__ = "dashboard_login"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    expires_at: datetime = Field(sa_type=UtcDateTime())
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class DashboardSession(SQLModel, table=True):
    """A browser logged in to the dashboard (the cookie holds the token, the row its
    hash); it ends after a spell of inactivity, at logout, or with the person."""

    __tablename__ = "dashboard_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


DASHBOARD_LOGIN: sa.Table = DashboardLogin.__table__  # type: ignore[attr-defined]
DASHBOARD_SESSION: sa.Table = DashboardSession.__table__  # type: ignore[attr-defined]
