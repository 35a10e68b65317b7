"""What an exported column is: its name, how its values are written, what it means."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """How a column's values are written (XLSX: as dates, numbers or text)."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    MOMENT = "datetime"
    FLAG = "boolean"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``identifier`` columns are hashed and ``personal`` ones left out when
    pseudonymizing; ``nl`` and ``en`` explain it in the data dictionary."""

    name: str
    kind: Kind
    nl: str
    en: str
    identifier: bool = False
    personal: bool = False


Row = list[Any]
"""A row's plain values, in column order."""
