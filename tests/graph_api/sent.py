"""What the emulator keeps of a call: the messages it accepted and the faults it was told to
inject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    code: int
    status: int
    count: int


@dataclass
class Sent:
    """A message the emulator accepted."""

    wamid: str
    to: str
    type: str
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str:
        """What the person reads first: the text, the body, the caption or the template's
        parameters."""
        kind = self.body.get(self.type, {})
        if self.type == "text":
            return str(kind.get("body", ""))
        if self.type == "interactive":
            return str(kind.get("body", {}).get("text", ""))
        if self.type in ("image", "document"):
            return str(kind.get("caption", ""))
        if self.type == "template":
            return " ".join(p.get("text", "") for c in kind.get("components", [])
                            for p in c.get("parameters", []))
        return ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(id, title) of each reply button or list row."""
        interactive = self.body.get("interactive", {})
        action = interactive.get("action", {})
        if interactive.get("type") == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        if interactive.get("type") == "list":
            return [(r["id"], r["title"]) for s in action.get("sections", [])
                    for r in s.get("rows", [])]
        return []

    def row(self, row_id: str) -> dict[str, Any]:
        for section in self.body.get("interactive", {}).get("action", {}).get("sections", []):
            for row in section.get("rows", []):
                if row["id"] == row_id:
                    return dict(row)
        raise KeyError(row_id)
