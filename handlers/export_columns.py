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


#: Who a per-person row is about, and where their shop is (most tables start with these).
RESPONDENT = Column("respondent_id", Kind.INTEGER, "Nummer van de deelnemer (met "
                    "--pseudonymize: een sleutelcode)", "Participant number (with "
                    "--pseudonymize: a keyed code)", identifier=True)
PROFILE = (
    Column("shop_type", Kind.TEXT, "Soort zaak", "Kind of business"),
    Column("municipality", Kind.TEXT, "Gemeente (een van de 62 van West-Vlaanderen)",
           "Municipality (one of West Flanders' 62)"),
    Column("arrondissement", Kind.TEXT, "Arrondissement van die gemeente",
           "Arrondissement of that municipality"),
)
