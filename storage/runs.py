"""Flow runs, the flow versions they are pinned to, and assessment results."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.tables import AssessmentResult, FlowSnapshot, Run, RunStatus, utcnow

OPEN = (RunStatus.ACTIVE, RunStatus.PAUSED)  # runs a shopkeeper is still in


async def remember_flow(session: AsyncSession, *, key: str, flow_id: str, version: str,
                        source: str) -> None:
    """Keep the text of a flow version once, so runs pinned to it survive later edits."""
    if await session.get(FlowSnapshot, key) is None:
        session.add(FlowSnapshot(key=key, flow_id=flow_id, version=version, source=source))
        await session.flush()


async def flow_source(session: AsyncSession, *, key: str) -> str | None:
    snapshot = await session.get(FlowSnapshot, key)
    return snapshot.source if snapshot else None


async def start_run(session: AsyncSession, *, shopkeeper_id: int, flow_id: str, flow_key: str,
                    state: dict[str, Any]) -> Run:
    """Close any open run and start a new one."""
    await session.execute(
        sa.update(Run).where(col(Run.shopkeeper_id) == shopkeeper_id,
                             col(Run.status).in_(OPEN))
        .values(status=RunStatus.ABANDONED, updated_at=utcnow()))
    run = Run(shopkeeper_id=shopkeeper_id, flow_id=flow_id, flow_key=flow_key, state=state)
    session.add(run)
    await session.flush()
    return run


async def save_run(session: AsyncSession, *, run: Run, state: dict[str, Any],
                   status: RunStatus | None = None) -> None:
    run.state = state
    run.updated_at = utcnow()
    if status is not None:
        run.status = status
        if status is RunStatus.COMPLETED:
            run.completed_at = run.updated_at
    session.add(run)  # written with the rest of the turn at commit


async def add_result(session: AsyncSession, *, shopkeeper_id: int, run_id: int, flow_key: str,
                     scores: dict[str, int], overall: int) -> AssessmentResult:
    result = AssessmentResult(shopkeeper_id=shopkeeper_id, run_id=run_id, flow_key=flow_key,
                              scores=scores, overall=overall)
    session.add(result)
    return result


async def latest_result(session: AsyncSession, *, shopkeeper_id: int) -> AssessmentResult | None:
    statement = (sa.select(AssessmentResult)
                 .where(col(AssessmentResult.shopkeeper_id) == shopkeeper_id)
                 .order_by(col(AssessmentResult.id).desc()).limit(1))
    return (await session.execute(statement)).scalar_one_or_none()


async def run_by_id(session: AsyncSession, *, run_id: int) -> Run | None:
    return await session.get(Run, run_id)
