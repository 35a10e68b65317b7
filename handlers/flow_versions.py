"""Resolve the flow version a run is pinned to, even after the file has changed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from flows.definition import Flow
from flows.loader import parse_flow
from storage import runs


class FlowVersions:
    """The shipped flows plus every older version a run still needs (kept in the database)."""

    def __init__(self, current: dict[str, Flow]) -> None:
        self.current = current
        self._by_key = {flow.key: flow for flow in current.values()}

    def latest(self, flow_id: str) -> Flow:
        return self.current[flow_id]

    async def pinned(self, tx: AsyncConnection, key: str) -> Flow | None:
        """The flow at ``key``; None when neither shipped nor stored (a foreign database)."""
        flow = self._by_key.get(key)
        if flow is None:
            source = await runs.flow_source(tx, key=key)
            if source is None:
                return None
            flow = parse_flow(source, f"<stored {key}>")
            self._by_key[key] = flow
        return flow

    async def remember_current(self, tx: AsyncConnection) -> None:
        """Store the text of every shipped flow (once per version), at start-up: runs begun
        on it must still find it after the file changes."""
        for flow in self.current.values():
            await runs.remember_flow(tx, key=flow.key, flow_id=flow.id,
                                     version=flow.version, source=flow.source)
