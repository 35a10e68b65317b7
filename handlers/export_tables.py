"""The tables an admin can export: their columns, what each means, and their rows.

Each table is a list of :class:`Column` (name, kind, and a description in Dutch and
English for the data dictionary) and a function that turns what :mod:`storage.exports`
reads into rows of plain values, in column order. Questions, answer labels and points come
from the flow version each run was pinned to (kept in the database), so an export says what
the person was really asked, even after the flow file changed.

Pseudonymized exports replace every identifier by a keyed hash and leave out the columns
that are ``personal``: names, chat addresses and free text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import sqlalchemy as sa

from flows.audience import Segment
from flows.definition import Flow
from flows.loader import parse_flow
from flows.places import gazetteer
from handlers.export_columns import PROFILE, RESPONDENT, Column, Kind, Row
from handlers.export_conversations import QUESTIONS, TICKETS, question_rows, ticket_rows
from storage import exports
from storage.exports import Filters


class Pseudonyms:
    """Keyed hashes (HMAC-SHA256) for identifiers: the same person gets the same code in
    every table and every export with the same key, and nobody without the key can go
    back from the code to the person."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a pseudonymization key may not be empty")
        self._key = key

    def of(self, column: str, value: object) -> str:
        message = f"{column}:{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Question:
    """A scored question as exported: its choices' Dutch labels and points by choice id."""

    id: str
    theme: str
    text_nl: str
    choices: dict[str, tuple[str, float | None]]


class Sources:
    """What rows are made of besides the database rows: every stored flow version (parsed
    once) and the arrondissement of each municipality."""

    def __init__(self, conn: sa.Connection) -> None:
        self._texts = exports.flow_sources(conn)
        self._parsed: dict[str, Flow] = {}
        self._questions: dict[tuple[str, str | None], tuple[Question, ...]] = {}
        self.arrondissement_of = gazetteer().arrondissement_of
        themes: dict[str, None] = {}
        for key in sorted(self._texts):
            if key.startswith("assessment@"):
                themes.update(dict.fromkeys(t.id for t in self.flow(key).themes))
        #: The themes of every assessment version, in order: a column each.
        self.themes = tuple(themes)

    def flow(self, key: str) -> Flow:
        flow = self._parsed.get(key)
        if flow is None:
            flow = parse_flow(self._texts[key], f"<stored {key}>")
            self._parsed[key] = flow
        return flow

    def questions(self, key: str, audience: str | None) -> tuple[Question, ...]:
        """The scored questions of flow version ``key`` as worded for ``audience``, each
        with its choices by id (looked up once: 100,000 answers ask again and again)."""
        found = self._questions.get((key, audience))
        if found is None:
            flow = self.flow(key)
            found = tuple(
                Question(node.id, node.theme or "", node.text_for(audience)["nl"],
                         {c.id: (c.label["nl"], c.score) for c in node.choices})
                for node in flow.questions())
            self._questions[(key, audience)] = found
        return found

    def arrondissement(self, municipality: str | None) -> str | None:
        return self.arrondissement_of.get(municipality or "")


_ASSESSMENT = (
    Column("assessment_id", Kind.INTEGER, "Nummer van de afgewerkte check", "Number of the "
           "completed assessment", identifier=True),
    Column("round", Kind.TEXT, "De hoeveelste check van deze deelnemer: T0 de eerste, T1 de "
           "tweede, …", "Which assessment of this participant: T0 the first, T1 the second, …"),
)

ANSWERS = (
    RESPONDENT, *PROFILE, *_ASSESSMENT,
    Column("answered_at", Kind.MOMENT, "Wanneer de check afgewerkt werd (Brusselse tijd); "
           "losse antwoorden hebben geen eigen tijdstip", "When the assessment was completed "
           "(Brussels time); single answers have no time of their own"),
    Column("theme", Kind.TEXT, "Thema van de vraag", "Theme of the question"),
    Column("question_id", Kind.TEXT, "Code van de vraag in de flow", "Question id in the flow"),
    Column("question_nl", Kind.TEXT, "De vraag zoals gesteld, in het Nederlands", "The "
           "question as asked, in Dutch"),
    Column("answer_id", Kind.TEXT, "Code van het gekozen antwoord", "Id of the chosen answer"),
    Column("answer_nl", Kind.TEXT, "Het gekozen antwoord, in het Nederlands", "The chosen "
           "answer, in Dutch"),
    Column("points", Kind.NUMBER, "Punten van het antwoord, 0 tot 1; leeg bij 'weet niet / "
           "bestaat hier niet' (telt niet mee)", "Points of the answer, 0 to 1; empty for "
           "\"don't know / doesn't exist here\" (not counted)"),
)


def answer_rows(conn: sa.Connection, filters: Filters, sources: Sources,
                done: Callable[[], None]) -> Iterator[Row]:
    """One row per answer of every completed assessment, in question order."""
    for found in exports.assessments(conn, filters):
        key = found["flow_key"]
        profile = {k: found[k] for k in ("shop_type", "team_size") if found[k] is not None}
        questions = sources.questions(key, sources.flow(key).audience_of(profile))
        answers: dict[str, str] = (found["state"] or {}).get("answers", {})
        start = [found["shopkeeper_id"], found["shop_type"], found["municipality"],
                 sources.arrondissement(found["municipality"]), found["id"],
                 f"T{found['round']}", found["completed_at"] or found["created_at"]]
        for question in questions:
            picked = answers.get(question.id)
            chosen = question.choices.get(picked) if picked is not None else None
            if chosen is None:
                continue
            yield [*start, question.theme, question.id, question.text_nl, picked, *chosen]
        done()


def assessment_columns(themes: tuple[str, ...]) -> tuple[Column, ...]:
    per_theme = [Column(f"score_{t}", Kind.INTEGER, f"Score op {t}, 0 tot 100",
                        f"Score on {t}, 0 to 100") for t in themes]
    levels = [Column(f"level_{t}", Kind.TEXT, f"Niveau op {t}", f"Level on {t}")
              for t in themes]
    changes = [Column(f"change_{t}", Kind.INTEGER, f"Verschil op {t} met de vorige check van "
                      "deze deelnemer (leeg bij T0)", f"Change on {t} since this participant's "
                      "previous assessment (empty at T0)") for t in themes]
    return (
        RESPONDENT, *PROFILE, *_ASSESSMENT,
        Column("completed_at", Kind.MOMENT, "Wanneer de check afgewerkt werd (Brusselse "
               "tijd)", "When the assessment was completed (Brussels time)"),
        *per_theme,
        Column("overall", Kind.INTEGER, "Totaalscore: het gemiddelde van de thema's, 0 tot "
               "100", "Overall score: the mean of the themes, 0 to 100"),
        Column("level", Kind.TEXT, "Niveau van de totaalscore (Aan de start, Op weg, Goed "
               "bezig, Voorloper)", "Level of the overall score (Getting started, On your "
               "way, Doing well, Front-runner)"),
        *levels, *changes,
        Column("change_overall", Kind.INTEGER, "Verschil in totaalscore met de vorige check "
               "(leeg bij T0)", "Change of the overall score since the previous assessment "
               "(empty at T0)"),
    )


def assessment_rows(conn: sa.Connection, filters: Filters, sources: Sources,
                    done: Callable[[], None]) -> Iterator[Row]:
    """One row per completed assessment."""
    for found in exports.assessments(conn, filters):
        flow = sources.flow(found["flow_key"])
        scores: dict[str, int] = dict(found["scores"] or {})
        before: dict[str, int] | None = found["previous_scores"]
        per_theme = [scores.get(t) for t in sources.themes]
        levels = [flow.level_for(scores[t]).name["nl"] if t in scores else None
                  for t in sources.themes]
        changes = [scores[t] - before[t] if before is not None and t in scores and t in before
                   else None for t in sources.themes]
        previous = found["previous_overall"]
        yield [found["shopkeeper_id"], found["shop_type"], found["municipality"],
               sources.arrondissement(found["municipality"]), found["id"],
               f"T{found['round']}", found["completed_at"] or found["created_at"],
               *per_theme, found["overall"], flow.level_for(found["overall"]).name["nl"],
               *levels, *changes,
               found["overall"] - previous if previous is not None else None]
        done()


USERS = (
    RESPONDENT,
    Column("chat", Kind.TEXT, "Kanaal en chat-id (telegram:123…)", "Channel and chat id "
           "(telegram:123…)", personal=True),
    Column("language", Kind.TEXT, "Taal (nl, en, fr)", "Language (nl, en, fr)"),
    Column("shop_name", Kind.TEXT, "Naam van de zaak, zoals getypt", "Name of the business, as "
           "typed", personal=True),
    *PROFILE,
    Column("municipality_typed", Kind.TEXT, "De plaats zoals de deelnemer ze typte",
           "The place as the participant typed it", personal=True),
    Column("team_size", Kind.TEXT, "Grootte van het team", "Size of the team"),
    Column("consent_at", Kind.MOMENT, "Wanneer de deelnemer toestemming gaf (Brusselse tijd)",
           "When the participant gave consent (Brussels time)"),
    Column("privacy_notice", Kind.TEXT, "Versie van de privacyverklaring waarop toestemming "
           "gegeven werd", "Version of the privacy notice consented to"),
    Column("status", Kind.TEXT, "active (actief), opted_out (zelf gestopt met /stop) of "
           "unreachable (heeft de bot geblokkeerd)", "active, opted_out (stopped with /stop) "
           "or unreachable (blocked the bot)"),
    Column("first_seen", Kind.MOMENT, "Eerste bericht aan de bot", "First message to the bot"),
    Column("last_activity", Kind.MOMENT, "Laatste activiteit (profiel of check)", "Last "
           "activity (profile or assessment)"),
)


def user_rows(conn: sa.Connection, filters: Filters, sources: Sources,
              done: Callable[[], None]) -> Iterator[Row]:
    for person in exports.users(conn, filters):
        status = ("opted_out" if person["opted_out_at"] is not None
                  else "unreachable" if person["unreachable_since"] is not None else "active")
        yield [person["id"], person["address"], person["language"], person["shop_name"],
               person["shop_type"], person["municipality"],
               sources.arrondissement(person["municipality"]), person["municipality_input"],
               person["team_size"], person["consent_at"], person["consent_version"], status,
               person["created_at"], person["last_activity"]]
        done()


TIPS = (
    RESPONDENT, *PROFILE,
    Column("tip_id", Kind.TEXT, "Code van de tip (leeg: een actie uit het resultaat)",
           "Tip id (empty: an action from the result)"),
    Column("theme", Kind.TEXT, "Thema van de tip", "Theme of the tip"),
    Column("kind", Kind.TEXT, "Soort tip", "Kind of tip"),
    Column("sent_at", Kind.MOMENT, "Wanneer de tip verstuurd werd", "When the tip was sent"),
    Column("outcome", Kind.TEXT, "Reactie op de tip: done (gedaan), later, not_for_me (niet "
           "voor mij); leeg: geen reactie", "Reaction to the tip: done, later, not_for_me; "
           "empty: none"),
    Column("outcome_at", Kind.MOMENT, "Wanneer de reactie kwam", "When the reaction came"),
    Column("commitment_source", Kind.TEXT, "Waar de actie van de week vandaan komt "
           "(tip:<id> of result:<vraag>); leeg: geen", "Where this week's action came from "
           "(tip:<id> or result:<question>); empty: none"),
    Column("commitment_text", Kind.TEXT, "De actie zoals de deelnemer ze las", "The action as "
           "the participant read it", personal=True),
    Column("committed_at", Kind.MOMENT, "Wanneer de actie gekozen werd", "When the action was "
           "chosen"),
    Column("commitment_outcome", Kind.TEXT, "Hoe het liep: done, busy (nog bezig), dropped, "
           "replaced (andere actie gekozen)", "How it went: done, busy, dropped, replaced"),
    Column("commitment_outcome_at", Kind.MOMENT, "Wanneer dat gemeld werd", "When that was "
           "said"),
)


def tip_rows(conn: sa.Connection, filters: Filters, sources: Sources,
             done: Callable[[], None]) -> Iterator[Row]:
    for tip in exports.tips(conn, filters):
        values = dict(tip)
        yield [tip["shopkeeper_id"], tip["shop_type"], tip["municipality"],
               sources.arrondissement(tip["municipality"]), values.get("tip_id"),
               values.get("theme"), values.get("kind"), values.get("sent_at"),
               values.get("outcome"), values.get("outcome_at"), tip["source"], tip["what"],
               tip["chosen_at"], tip["commitment_outcome"], tip["commitment_outcome_at"]]
        done()


BROADCASTS = (
    Column("broadcast_id", Kind.INTEGER, "Nummer van het bericht", "Broadcast number"),
    Column("created_via", Kind.TEXT, "Wie het maakte (kanaal:id of cli:login)", "Who made "
           "it (channel:id or cli:login)", personal=True),
    Column("created_at", Kind.MOMENT, "Wanneer het gemaakt werd", "When it was made"),
    Column("send_at", Kind.MOMENT, "Wanneer het vertrekt of vertrok", "When it goes or went "
           "out"),
    Column("status", Kind.TEXT, "scheduled, sending, done of cancelled", "scheduled, "
           "sending, done or cancelled"),
    Column("urgent", Kind.FLAG, "Ook buiten de verzenduren", "Also outside the sending "
           "hours"),
    Column("segment", Kind.TEXT, "Voor wie (sleutel=waarden)", "For whom (key=values)"),
    Column("text_nl", Kind.TEXT, "De tekst (Nederlands)", "The text (Dutch)", personal=True),
    Column("recipients", Kind.INTEGER, "Aantal ontvangers bij het versturen", "Recipients "
           "when it went out"),
    *(Column(name, Kind.INTEGER, nl, en) for name, nl, en in (
        ("queued", "Nog onderweg", "Still on its way"),
        ("sent", "Verstuurd", "Sent"),
        ("failed", "Mislukt", "Failed"),
        ("unreachable", "Niet bereikbaar (bot geblokkeerd)", "Unreachable (bot blocked)"),
        ("uncertain", "Onzeker of het aankwam", "Uncertain whether it arrived"),
        ("cancelled", "Geannuleerd voor vertrek", "Cancelled before it went")))
    ,
    Column("finished_at", Kind.MOMENT, "Wanneer elk bericht definitief was", "When every "
           "message was final"),
)


def broadcast_rows(conn: sa.Connection, filters: Filters, sources: Sources,
                   done: Callable[[], None]) -> Iterator[Row]:
    for made, counts in exports.broadcasts(conn, filters):
        segment = Segment({k: frozenset(v) for k, v in (made["segment"] or {}).items()})
        texts: dict[str, str] = made["texts"] or {}
        yield [made["id"], made["created_via"], made["created_at"], made["send_at"],
               made["status"], made["urgent"], segment.describe(),
               texts.get("nl", next(iter(texts.values()), "")), made["recipients"],
               counts.queued, counts.sent, counts.failed, counts.unreachable,
               counts.uncertain, counts.cancelled, made["finished_at"]]
        done()


RowSource = Callable[[sa.Connection, Filters, Sources, Callable[[], None]], Iterator[Row]]


@dataclass(frozen=True, slots=True)
class Table:
    """An exportable table: its columns, its rows, and how many units of progress (the
    rows it reads) a progress bar counts."""

    name: str
    columns: Callable[[Sources], tuple[Column, ...]]
    rows: RowSource
    size: Callable[[sa.Connection, Filters], int]
    moment: str  # what --since/--until filter on, for the data dictionary


TABLES: dict[str, Table] = {
    "answers": Table("answers", lambda _: ANSWERS, answer_rows, exports.count_assessments,
                     "completed_at"),
    "assessments": Table("assessments", lambda s: assessment_columns(s.themes),
                         assessment_rows, exports.count_assessments, "completed_at"),
    "users": Table("users", lambda _: USERS, user_rows, exports.count_users, "first_seen"),
    "tips": Table("tips", lambda _: TIPS, tip_rows, exports.count_tips,
                  "sent_at / committed_at"),
    "broadcasts": Table("broadcasts", lambda _: BROADCASTS, broadcast_rows,
                        lambda conn, f: 0, "send_at"),
    "tickets": Table("tickets", lambda _: TICKETS, ticket_rows, exports.count_tickets,
                     "opened_at"),
    "questions": Table("questions", lambda _: QUESTIONS, question_rows,
                       exports.count_questions, "asked_at"),
}


def shaped(columns: tuple[Column, ...], rows: Iterator[Row],
           pseudonyms: Pseudonyms | None) -> tuple[tuple[Column, ...], Iterator[Row]]:
    """The columns and rows as exported: with ``pseudonyms``, identifiers hashed and
    personal columns left out."""
    if pseudonyms is None:
        return columns, rows
    kept = [i for i, c in enumerate(columns) if not c.personal]
    hashed = {i for i in kept if columns[i].identifier}

    def pseudonymized() -> Iterator[Row]:
        for row in rows:
            yield [pseudonyms.of(columns[i].name, row[i])
                   if i in hashed and row[i] is not None else row[i] for i in kept]

    # A code is text, whatever the identifier was.
    return (tuple(replace(columns[i], kind=Kind.TEXT) if i in hashed else columns[i]
                  for i in kept), pseudonymized())
