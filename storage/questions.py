"""Questions to the coach: recorded when asked, answered later (the model call runs between
two transactions), counted for the daily quota and the monthly token budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import COMMITMENT, QUESTION, QuestionSource, QuestionStatus


@dataclass(frozen=True, slots=True)
class Usage:
    """What the questions since a moment cost: how many, answered how, and tokens."""

    questions: int
    by_ai: int
    by_tips: int
    prompt_tokens: int
    completion_tokens: int
    coach_requests: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def ask(tx: AsyncConnection, *, shopkeeper_id: int, text: str, now: datetime,
              ai_notice: bool) -> int:
    """Record a question (status ``asked``); returns its id."""
    return int((await tx.execute(sa.insert(QUESTION).values(
        shopkeeper_id=shopkeeper_id, asked_at=now, text=text, status=QuestionStatus.ASKED,
        prompt_tokens=0, completion_tokens=0, ai_notice=ai_notice)
        .returning(QUESTION.c.id))).scalar_one())


async def answer(tx: AsyncConnection, *, question_id: int, text: str, source: QuestionSource,
                 now: datetime, model: str | None = None, prompt_tokens: int = 0,
                 completion_tokens: int = 0) -> None:
    """Record the answer to a question and what it cost."""
    await tx.execute(sa.update(QUESTION).where(QUESTION.c.id == question_id).values(
        answer=text, source=source, model=model, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, answered_at=now,
        status=QuestionStatus.ANSWERED))


async def asked_since(tx: AsyncConnection, *, shopkeeper_id: int, since: datetime) -> int:
    """How many questions the person asked since ``since`` (the daily quota)."""
    return int((await tx.execute(sa.select(sa.func.count()).where(
        QUESTION.c.shopkeeper_id == shopkeeper_id, QUESTION.c.asked_at >= since)))
        .scalar_one())


async def had_ai_notice(tx: AsyncConnection, *, shopkeeper_id: int) -> bool:
    """Whether the one-time notice that answers come from an AI went to the person."""
    return (await tx.execute(sa.select(QUESTION.c.id).where(
        QUESTION.c.shopkeeper_id == shopkeeper_id, QUESTION.c.ai_notice).limit(1))
        ).first() is not None


async def text_of(tx: AsyncConnection, *, question_id: int) -> str | None:
    """What was asked (for the ticket a coach request opens)."""
    return (await tx.execute(sa.select(QUESTION.c.text).where(
        QUESTION.c.id == question_id))).scalar_one_or_none()


async def request_coach(tx: AsyncConnection, *, question_id: int, shopkeeper_id: int) -> bool:
    """Mark that the person asked to talk to a coach about their question; False when the
    question is not theirs (or no longer exists)."""
    result = await tx.execute(sa.update(QUESTION).where(
        QUESTION.c.id == question_id, QUESTION.c.shopkeeper_id == shopkeeper_id)
        .values(status=QuestionStatus.COACH_REQUESTED))
    return bool(result.rowcount)


async def usage(tx: AsyncConnection, *, since: datetime) -> Usage:
    """The whole bot's questions and tokens since ``since`` (the monthly budget)."""
    q = QUESTION.c
    row = (await tx.execute(sa.select(
        sa.func.count(),
        sa.func.count().filter(q.source == QuestionSource.AI),
        sa.func.count().filter(q.source == QuestionSource.TIPS),
        sa.func.coalesce(sa.func.sum(q.prompt_tokens), 0),
        sa.func.coalesce(sa.func.sum(q.completion_tokens), 0),
        sa.func.count().filter(q.status == QuestionStatus.COACH_REQUESTED),
    ).where(q.asked_at >= since))).one()
    return Usage(*(int(value) for value in row))


async def tokens_since(tx: AsyncConnection, *, since: datetime) -> int:
    """Tokens the whole bot spent on answers since ``since``."""
    q = QUESTION.c
    return int((await tx.execute(sa.select(
        sa.func.coalesce(sa.func.sum(q.prompt_tokens + q.completion_tokens), 0))
        .where(q.answered_at >= since))).scalar_one())


async def open_commitment(tx: AsyncConnection, *, shopkeeper_id: int) -> str | None:
    """The action the person chose for this week and has not reported on yet."""
    return (await tx.execute(sa.select(COMMITMENT.c.what).where(
        COMMITMENT.c.shopkeeper_id == shopkeeper_id, COMMITMENT.c.outcome.is_(None))
        .order_by(COMMITMENT.c.id.desc()).limit(1))).scalar_one_or_none()
