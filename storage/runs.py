"""Flow runs, the flow versions they are pinned to, and assessment results.

Runs are read as :class:`~storage.records.RunRecord` and written with explicit statements
(see :mod:`storage.records` for why).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.records import RESULT_COLUMNS, RUN_COLUMNS, ResultRecord, RunRecord, run_from
from storage.tables import FLOW_SNAPSHOT, RESULT, RUN, RunStatus, utcnow

OPEN = (RunStatus.ACTIVE, RunStatus.PAUSED)  # runs a shopkeeper is still in

_CLOSE_OPEN = (sa.update(RUN)
               .where(RUN.c.shopkeeper_id == sa.bindparam("owner"), RUN.c.status.in_(OPEN))
               .values(status=RunStatus.ABANDONED, updated_at=sa.bindparam("now")))
_INSERT = sa.insert(RUN).returning(*RUN_COLUMNS)
_SAVE = (sa.update(RUN).where(RUN.c.id == sa.bindparam("run_id"))
         .values(state=sa.bindparam("state"), status=sa.bindparam("status"),
                 updated_at=sa.bindparam("updated_at"),
                 completed_at=sa.bindparam("completed_at")))
_BY_ID = sa.select(*RUN_COLUMNS).where(RUN.c.id == sa.bindparam("run_id"))
_INSERT_RESULT = sa.insert(RESULT)


async def remember_flow(tx: AsyncConnection, *, key: str, flow_id: str, version: str,
                        source: str) -> None:
    """Keep the text of a flow version once, so runs pinned to it survive later edits."""
    if await flow_source(tx, key=key) is None:
        await tx.execute(sa.insert(FLOW_SNAPSHOT).values(
            key=key, flow_id=flow_id, version=version, source=source, created_at=utcnow()))


async def flow_source(tx: AsyncConnection, *, key: str) -> str | None:
    return (await tx.execute(
        sa.select(FLOW_SNAPSHOT.c.source).where(FLOW_SNAPSHOT.c.key == key))).scalar_one_or_none()


async def start_run(tx: AsyncConnection, *, shopkeeper_id: int, flow_id: str, flow_key: str,
                    state: dict[str, Any], now: datetime | None = None) -> RunRecord:
    """Close any open run and start a new one (``now``: the caller's clock)."""
    now = now or utcnow()
    await tx.execute(_CLOSE_OPEN, {"owner": shopkeeper_id, "now": now})
    row = (await tx.execute(_INSERT, {
        "shopkeeper_id": shopkeeper_id, "flow_id": flow_id, "flow_key": flow_key,
        "status": RunStatus.ACTIVE, "state": state, "started_at": now, "updated_at": now,
    })).one()
    run = run_from(row)
    assert run is not None
    return run


async def save_run(tx: AsyncConnection, *, run: RunRecord, state: dict[str, Any],
                   status: RunStatus | None = None, now: datetime | None = None) -> None:
    """Write the run's new state (and status), in the record and in the database; the
    run's last activity is ``now`` (the caller's clock: reminders count from it)."""
    run.state = state
    run.updated_at = now or utcnow()
    if status is not None:
        run.status = status
        if status is RunStatus.COMPLETED:
            run.completed_at = run.updated_at
    await tx.execute(_SAVE, {"run_id": run.id, "state": run.state, "status": run.status,
                                  "updated_at": run.updated_at,
                                  "completed_at": run.completed_at})


async def add_result(tx: AsyncConnection, *, shopkeeper_id: int, run_id: int, flow_key: str,
                     scores: dict[str, int], overall: int, focus: list[str],
                     now: datetime | None = None) -> None:
    await tx.execute(_INSERT_RESULT, {
        "shopkeeper_id": shopkeeper_id, "run_id": run_id, "flow_key": flow_key,
        "scores": scores, "overall": overall, "focus": focus, "created_at": now or utcnow()})


async def latest_result(tx: AsyncConnection, *, shopkeeper_id: int) -> ResultRecord | None:
    row = (await tx.execute(
        sa.select(*RESULT_COLUMNS).where(RESULT.c.shopkeeper_id == shopkeeper_id)
        .order_by(RESULT.c.id.desc()).limit(1))).first()
    return ResultRecord(*row) if row is not None else None


async def result_of_run(tx: AsyncConnection, *, run_id: int) -> ResultRecord | None:
    row = (await tx.execute(sa.select(*RESULT_COLUMNS).where(RESULT.c.run_id == run_id)
                            .order_by(RESULT.c.id.desc()).limit(1))).first()
    return ResultRecord(*row) if row is not None else None


async def result_before(tx: AsyncConnection, *, result: ResultRecord) -> ResultRecord | None:
    """The person's result before ``result``: what a re-assessment is compared with."""
    row = (await tx.execute(
        sa.select(*RESULT_COLUMNS).where(RESULT.c.shopkeeper_id == result.shopkeeper_id,
                                         RESULT.c.id < result.id)
        .order_by(RESULT.c.id.desc()).limit(1))).first()
    return ResultRecord(*row) if row is not None else None


async def run_by_id(tx: AsyncConnection, *, run_id: int) -> RunRecord | None:
    row = (await tx.execute(_BY_ID, {"run_id": run_id})).first()
    return run_from(row) if row is not None else None
