"""What goes in and out of the engine: channel-agnostic messages.

Channels only translate: Telegram turns :class:`Button` into an inline keyboard, the terminal
into numbered lines, WhatsApp (later) into reply buttons or a list. Every :class:`Outbound` is
plain data, so it can be stored in the outbox and delivered later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from flows.definition import Outcome

#: Button ids that steer rather than answer ("back one question", "continue later").
BACK, PAUSE = "_back", "_pause"


@dataclass(frozen=True, slots=True)
class Button:
    """One answer a user can tap. ``id`` is short: channels put it in callback data."""

    id: str
    label: str

    @property
    def steers(self) -> bool:
        """A navigation button; channels may put these on a row of their own."""
        return self.id.startswith("_")


@dataclass(frozen=True, slots=True)
class Image:
    """A picture to send; ``data`` is PNG bytes, ``name`` a file name for it."""

    name: str
    data: bytes
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A file to send (an export, someone's own data). The bytes are kept apart from the
    JSON payload in the outbox (its ``attachment`` bytes); ``data`` is empty in a message
    read back from a payload until the sender fills it in from the row."""

    name: str
    content_type: str
    data: bytes = b""
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart to draw: data, so it can wait in the outbox; drawn just before sending.

    ``style`` is ``"radar"`` (scores 0-100 per theme), ``"bars"`` (a count per theme) or
    ``"score_bars"`` (scores 0-100 as bars, e.g. the average per theme of many shops).
    ``before`` holds earlier scores in the order of ``labels``: a radar then shows them under
    the current ones, with ``legend`` naming the two (before, now) in the user's language
    (bars have no earlier overlay).
    """

    title: str
    labels: tuple[str, ...]
    scores: tuple[int, ...]
    caption: str = ""
    name: str = "chart.png"
    before: tuple[int, ...] | None = None
    legend: tuple[str, str] = ("", "")
    style: str = "radar"

    #: How a chart can be drawn: a radar of 0-100 scores, horizontal bars of counts, or
    #: horizontal bars of 0-100 scores.
    STYLES: ClassVar[tuple[str, ...]] = ("radar", "bars", "score_bars")

    def __post_init__(self) -> None:
        if self.style not in self.STYLES:
            raise ValueError(f"chart style {self.style!r}: expected one of {self.STYLES}")
        if len(self.scores) != len(self.labels):
            raise ValueError(f"chart {self.title!r}: {len(self.scores)} scores "
                             f"for {len(self.labels)} labels")
        if self.before is not None and self.style != "radar":
            raise ValueError(f"chart {self.title!r}: only a radar shows earlier scores")
        if self.before is not None and len(self.before) != len(self.labels):
            raise ValueError(f"chart {self.title!r}: {len(self.before)} earlier scores "
                             f"for {len(self.labels)} labels")
        if len(self.legend) != 2:
            raise ValueError(f"chart {self.title!r}: the legend names two profiles, "
                             f"not {len(self.legend)}")

    def to_data(self) -> dict[str, Any]:
        """A JSON-able form; the newer fields only when set, like rows stored before them."""
        data: dict[str, Any] = {"title": self.title, "labels": list(self.labels),
                                "scores": list(self.scores), "caption": self.caption,
                                "name": self.name}
        if self.before is not None:
            data["before"] = list(self.before)
        if self.legend != ("", ""):
            data["legend"] = list(self.legend)
        if self.style != "radar":
            data["style"] = self.style
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Chart:
        """The chart :meth:`to_data` stored, also from rows written before a field existed."""
        before = data.get("before")
        legend = data.get("legend") or ("", "")
        if len(legend) != 2:
            raise ValueError(f"chart {data.get('title')!r}: the legend names two profiles")
        return cls(str(data["title"]), tuple(data["labels"]), tuple(data["scores"]),
                   str(data.get("caption", "")), str(data.get("name", "chart.png")),
                   before=tuple(before) if before is not None else None,
                   legend=(str(legend[0]), str(legend[1])),
                   style=str(data.get("style", "radar")))


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to the user.

    ``ref`` names the prompt the ``buttons`` answer; a press carrying another ``ref`` is
    stale (an old question) and changes nothing. A ``notice`` is a short remark about the
    last action that a channel may show as a pop-up instead of a message (Telegram does);
    ``press`` is then the platform's id of the button press it answers.
    """

    text: str
    buttons: tuple[Button, ...] = ()
    ref: str | None = None
    image: Image | None = None
    chart: Chart | None = None
    notice: bool = False
    press: str | None = None
    #: ``text`` is formatted (Telegram HTML: <b>, <i>, <a href>), validated by
    #: :mod:`flows.rich_text` before it was stored.
    html: bool = False
    #: A stored picture (:mod:`storage.media`) sent with the text: the text is its
    #: caption when it fits the platform's caption limit, else a message after it.
    photo: int | None = None
    #: Not a message but the removal of earlier ones: the platform's ids of messages
    #: in this chat to delete (a broadcast sent by mistake).
    delete: tuple[str, ...] = ()
    #: A file sent with ``text`` as its caption.
    document: Document | None = None
    #: The tickets this message shows (a coach's list): it is erased with any of them.
    tickets: tuple[int, ...] = ()
    #: The label of the answer the person just pressed, on the first message answering it:
    #: a channel that cannot mark it on the question (WhatsApp) starts with it instead.
    answered: str | None = None

    def to_data(self) -> dict[str, Any]:
        """A JSON-able form for the outbox (a chart is stored as data, drawn when sent)."""
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [[b.id, b.label] for b in self.buttons]
        if self.ref is not None:
            data["ref"] = self.ref
        if self.image is not None:
            data["image"] = {"name": self.image.name, "caption": self.image.caption}
        if self.chart is not None:
            data["chart"] = self.chart.to_data()
        if self.notice:
            data["notice"] = True
        if self.press is not None:
            data["press"] = self.press
        if self.html:
            data["html"] = True
        if self.photo is not None:
            data["photo"] = self.photo
        if self.delete:
            data["delete"] = list(self.delete)
        if self.document is not None:  # the bytes go in the outbox row's attachment
            data["document"] = {"name": self.document.name,
                                "content_type": self.document.content_type,
                                "caption": self.document.caption}
        if self.answered is not None:
            data["answered"] = self.answered
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Outbound:
        """The message :meth:`to_data` stored (an image's bytes are not stored: a chart is
        drawn again from its data)."""
        chart = data.get("chart")
        return cls(
            text=str(data.get("text", "")),
            buttons=tuple(Button(str(i), str(label)) for i, label in data.get("buttons", ())),
            ref=data.get("ref"),
            chart=Chart.from_data(chart) if chart else None,
            notice=bool(data.get("notice", False)),
            press=data.get("press"),
            html=bool(data.get("html", False)),
            photo=int(data["photo"]) if data.get("photo") is not None else None,
            delete=tuple(str(i) for i in data.get("delete", ())),
            document=Document(str(document["name"]), str(document["content_type"]),
                              caption=str(document.get("caption", "")))
            if (document := data.get("document")) else None,
            answered=str(data["answered"]) if data.get("answered") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """What the user answered: typed ``text`` or a pressed button (``choice`` + ``ref``)."""

    text: str | None = None
    choice: str | None = None
    ref: str | None = None
    #: A picture sent with the text (then its caption): the platform's id for it and the
    #: platform's stable id of the file (the same picture sent twice has the same one).
    photo: tuple[str, str] | None = None
    #: ``text`` with the formatting the person's app applied (bold, italic, links) as
    #: Telegram HTML; None when it had none.
    formatted: str | None = None
    #: The platform's id of the message this one replies to (a Telegram reply), if any:
    #: a coach replying to a ticket's message answers that ticket.
    replying_to: str | None = None


@dataclass(frozen=True, slots=True)
class Saved:
    """Event: the user answered a node that fills a profile field."""

    field: str
    value: str
    raw: str | None = None  # what they typed, when it differs (an old municipality name)


@dataclass(frozen=True, slots=True)
class Finished:
    """Event: the flow reached an end node."""

    outcome: Outcome
    next_flow: str | None


Event = Saved | Finished


@dataclass(slots=True)
class Step:
    """The engine's answer to one input: messages to send, events for the host."""

    messages: list[Outbound] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stale: bool = False

    @property
    def finished(self) -> Finished | None:
        return next((e for e in self.events if isinstance(e, Finished)), None)
