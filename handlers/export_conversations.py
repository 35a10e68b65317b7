"""The exportable conversations: tickets (a shopkeeper and a human coach) and questions to
the AI coach.

Both are mostly free text the person typed, so a pseudonymized export keeps only what can
be counted: when, how it went, who (as a keyed code), and what kind of shop where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

from handlers.export_columns import PROFILE, RESPONDENT, Column, Kind, Row
from storage import exports
from storage.exports import Filters

if TYPE_CHECKING:
    from handlers.export_tables import Sources


TICKETS = (
    RESPONDENT, *PROFILE,
    Column("ticket_id", Kind.INTEGER, "Nummer van het ticket (de vraag om een coach)",
           "Ticket number (the request for a coach)", identifier=True),
    Column("status", Kind.TEXT, "open (wacht op een coach), claimed (een coach nam het op) "
           "of closed (afgesloten)", "open (waiting for a coach), claimed (a coach took it) "
           "or closed"),
    Column("opened_at", Kind.MOMENT, "Wanneer de deelnemer om een coach vroeg",
           "When the participant asked for a coach"),
    Column("claimed_at", Kind.MOMENT, "Wanneer een coach het opnam", "When a coach took it"),
    Column("closed_at", Kind.MOMENT, "Wanneer het afgesloten werd (door de coach, of na 7 "
           "dagen stilte)", "When it was closed (by the coach, or after 7 silent days)"),
    Column("coach_id", Kind.INTEGER, "Nummer van de coach die het opnam", "Number of the "
           "coach who took it", identifier=True),
    Column("coach_name", Kind.TEXT, "Voornaam van die coach", "That coach's first name",
           personal=True),
    Column("message", Kind.INTEGER, "Volgnummer in het gesprek: 0 is de vraag zelf",
           "Place in the conversation: 0 is the request itself"),
    Column("from", Kind.TEXT, "Van wie: shopkeeper (de deelnemer) of coach",
           "From whom: shopkeeper (the participant) or coach"),
    Column("at", Kind.MOMENT, "Wanneer het bericht geschreven werd", "When the message was "
           "written"),
    Column("text", Kind.TEXT, "Het bericht zoals getypt", "The message as typed",
           personal=True),
)


def ticket_rows(conn: sa.Connection, filters: Filters, sources: Sources,
                done: Callable[[], None]) -> Iterator[Row]:
    """Per ticket: its request (message 0), then every message either way, in order."""
    current: int | None = None
    number = 0
    for found in exports.tickets(conn, filters):
        ticket = [found["shopkeeper_id"], found["shop_type"], found["municipality"],
                  sources.arrondissement(found["municipality"]), found["id"],
                  found["status"], found["created_at"], found["claimed_at"],
                  found["closed_at"], found["coach_id"], found["coach_name"]]
        if found["id"] != current:
            if current is not None:
                done()
            current, number = found["id"], 0
            yield [*ticket, 0, "shopkeeper", found["created_at"], found["question"]]
        if found["message_id"] is not None:
            number += 1
            yield [*ticket, number, "coach" if found["from_coach"] else "shopkeeper",
                   found["at"], found["text"]]
    if current is not None:
        done()


QUESTIONS = (
    RESPONDENT, *PROFILE,
    Column("question_id", Kind.INTEGER, "Nummer van de vraag", "Question number",
           identifier=True),
    Column("asked_at", Kind.MOMENT, "Wanneer de vraag gesteld werd", "When it was asked"),
    Column("question", Kind.TEXT, "De vraag zoals getypt", "The question as typed",
           personal=True),
    Column("answer", Kind.TEXT, "Het antwoord zoals verstuurd", "The answer as sent",
           personal=True),
    Column("answered_by", Kind.TEXT, "ai (een taalmodel) of tips (gevonden in de "
           "tipbibliotheek); leeg: nog geen antwoord", "ai (a language model) or tips (found "
           "in the tip library); empty: not answered yet"),
    Column("model", Kind.TEXT, "Het taalmodel dat antwoordde", "The language model that "
           "answered"),
    Column("prompt_tokens", Kind.INTEGER, "Tokens van de vraag aan het model (met context)",
           "Tokens sent to the model (with context)"),
    Column("completion_tokens", Kind.INTEGER, "Tokens van het antwoord", "Tokens of the "
           "answer"),
    Column("answered_at", Kind.MOMENT, "Wanneer het antwoord klaar was", "When the answer "
           "was ready"),
    Column("status", Kind.TEXT, "asked (antwoord onderweg), answered (beantwoord) of "
           "coach_requested (daarna om een coach gevraagd)", "asked (answer on its way), "
           "answered, or coach_requested (asked for a coach after it)"),
)


def question_rows(conn: sa.Connection, filters: Filters, sources: Sources,
                  done: Callable[[], None]) -> Iterator[Row]:
    for asked in exports.questions(conn, filters):
        yield [asked["shopkeeper_id"], asked["shop_type"], asked["municipality"],
               sources.arrondissement(asked["municipality"]), asked["id"], asked["asked_at"],
               asked["text"], asked["answer"], asked["source"], asked["model"],
               asked["prompt_tokens"], asked["completion_tokens"], asked["answered_at"],
               asked["status"]]
        done()
