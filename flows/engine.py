"""The conversation engine: a reply and the saved state in, messages and a new state out.

Pure on purpose (no database, network or Telegram): every channel runs the same engine, and a
test can drive a whole assessment in microseconds. The host (``handlers``) loads the state,
calls the engine, and stores the state, the events and the outbound messages together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows.definition import Choice, Flow, Node, NodeType, Outcome
from flows.messages import BACK, PAUSE, Button, Finished, Outbound, Reply, Saved, Step
from flows.places import Gazetteer, Match, Place, gazetteer, normalize
from flows.texts import Texts


@dataclass(slots=True)
class RunState:
    """Where one user is in one flow; stored as JSON between turns."""

    node_id: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # answered nodes, for "back"
    seq: int = 0  # bumps with every prompt, so an old button can be told apart
    suggestions: list[str] = field(default_factory=list)  # pick candidates on screen

    def to_data(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "answers": self.answers, "history": self.history,
                "seq": self.seq, "suggestions": self.suggestions}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RunState:
        return cls(data.get("node_id"), dict(data.get("answers", {})),
                   list(data.get("history", [])), int(data.get("seq", 0)),
                   list(data.get("suggestions", [])))


@dataclass(slots=True)
class Context:
    """Who the engine talks to: their language and profile (for skips and placeholders)."""

    lang: str
    profile: dict[str, str] = field(default_factory=dict)


#: Button id for "type it again" under pick suggestions, and the prefix of a suggestion's id
#: (ids stay short: channels put them in callback data of at most 64 bytes). "Type it
#: again" answers the question, so it is no steering button (those start with "_"): the
#: terminal chat numbers it like the suggestions instead of reading it as "later".
RETYPE = "retype"
_OLD_RETYPE = "_retype"  # on buttons sent before the rename; still understood
SUGGESTION = "s"


class Engine:
    """Runs flows. One instance serves every user; it keeps no per-user state."""

    def __init__(self, texts: Texts, places: Gazetteer | None = None) -> None:
        self.texts = texts
        self.places = places or gazetteer()

    # -- entry points -------------------------------------------------------------------

    def start(self, flow: Flow, ctx: Context) -> tuple[Step, RunState]:
        """Begin ``flow`` at its first node."""
        state = RunState()
        step = Step()
        self._advance(flow, state, ctx, step, self._first_applicable(flow, 0, ctx))
        return step, state

    def prompt(self, flow: Flow, state: RunState, ctx: Context) -> Step:
        """Show the current question again (resume after a pause or restart)."""
        step = Step()
        if state.node_id is not None:
            self._ask(flow, flow.node(state.node_id), state, ctx, step)
        return step

    def answer(self, flow: Flow, state: RunState, reply: Reply, ctx: Context) -> Step:
        """Handle the user's reply to the current node."""
        step = Step()
        if state.node_id is None:
            return step
        node = flow.node(state.node_id)
        if reply.ref is not None and reply.ref != str(state.seq):
            step.stale = True
            return step
        handler = {NodeType.CHOICE: self._on_choice, NodeType.TEXT: self._on_text,
                   NodeType.PICK: self._on_pick}[node.type]
        handler(flow, node, state, reply, ctx, step)
        return step

    def back(self, flow: Flow, state: RunState, ctx: Context) -> Step:
        """Go back one question, forgetting its answer."""
        step = Step()
        if not state.history:
            step.messages.append(Outbound(self.texts.get(ctx.lang, "back_unavailable")))
            return self._reprompt(flow, state, ctx, step)
        previous = state.history.pop()
        state.answers.pop(previous, None)
        state.suggestions = []
        state.node_id = previous
        self._ask(flow, flow.node(previous), state, ctx, step)
        return step

    # -- replies per node type ----------------------------------------------------------

    def _on_choice(self, flow: Flow, node: Node, state: RunState, reply: Reply,
                   ctx: Context, step: Step) -> None:
        choice = node.choice(reply.choice) if reply.choice else None
        if choice is None and reply.text is not None:
            choice = self._choice_from_text(node, reply.text, ctx.lang)
        if choice is None:
            step.messages.append(Outbound(self.texts.get(ctx.lang, "choose_option")))
            self._reprompt(flow, state, ctx, step)
            return
        state.answers[node.id] = choice.id
        if node.save_as:
            self._save(node.save_as, choice.stored_value, None, ctx, step)
        target = flow.position(choice.goto) if choice.goto else flow.position(node.id) + 1
        self._done_with(node, state)
        self._advance(flow, state, ctx, step, self._first_applicable(flow, target, ctx))

    def _on_text(self, flow: Flow, node: Node, state: RunState, reply: Reply,
                 ctx: Context, step: Step) -> None:
        text = " ".join((reply.text or "").split())
        if not node.min_length <= len(text) <= node.max_length:
            key = "text_too_short" if len(text) < node.min_length else "text_too_long"
            step.messages.append(Outbound(self.texts.get(
                ctx.lang, key, min=node.min_length, max=node.max_length)))
            self._reprompt(flow, state, ctx, step)
            return
        state.answers[node.id] = text
        assert node.save_as is not None  # the loader requires it
        self._save(node.save_as, text, None, ctx, step)
        self._done_with(node, state)
        self._advance(flow, state, ctx, step,
                      self._first_applicable(flow, flow.position(node.id) + 1, ctx))

    def _on_pick(self, flow: Flow, node: Node, state: RunState, reply: Reply,
                 ctx: Context, step: Step) -> None:
        place = None
        if reply.choice in (RETYPE, _OLD_RETYPE) or (
                reply.text is not None and state.suggestions
                and self._means_retype(reply.text, ctx.lang, len(state.suggestions))):
            state.suggestions = []
            self._ask(flow, node, state, ctx, step)
            return
        if reply.choice is not None and reply.choice.startswith(SUGGESTION):
            index = reply.choice.removeprefix(SUGGESTION)
            if index.isdigit() and int(index) < len(state.suggestions):
                place = Place.decode(state.suggestions[int(index)])
        elif reply.text is not None:
            place = self._suggestion_from_text(state, reply.text)
            if place is None:
                match = self.places.find(reply.text)
                if match.name is None:
                    self._offer(match, reply.text.strip()[:40], state, ctx, step)
                    return
                place = Place(match.name, match.alias_of or match.name)
        if place is None:
            self._reprompt(flow, state, ctx, step)
            return
        state.suggestions = []
        state.answers[node.id] = place.municipality
        assert node.save_as is not None
        raw = None if place.name == place.municipality else place.name
        self._save(node.save_as, place.municipality, raw, ctx, step)
        self._done_with(node, state)
        self._advance(flow, state, ctx, step,
                      self._first_applicable(flow, flow.position(node.id) + 1, ctx))

    def _offer(self, match: Match, typed: str, state: RunState, ctx: Context,
               step: Step) -> None:
        """No single municipality: ask which one (an ambiguous name), say kindly that a place
        lies outside the province, suggest close names for a typo, or ask to type again."""
        say = self.texts.get
        if match.candidates:
            offered = list(match.candidates)
            text = say(ctx.lang, "pick_which", text=typed)
            labels = [p.label for p in offered]
        elif match.outside is not None:
            name = match.outside_name or typed
            offered = [Place(name, name)]
            text = say(ctx.lang, "pick_outside", text=name,
                       region=say(ctx.lang, f"region_{match.outside}"))
            labels = [say(ctx.lang, "pick_outside_keep", text=name)]
        elif match.suggestions:
            offered = list(match.suggestions)
            text = say(ctx.lang, "pick_suggest", text=typed)
            labels = [p.label for p in offered]
        else:
            offered, labels = [], []
            text = say(ctx.lang, "pick_unknown", text=typed)
        state.suggestions = [p.encode() for p in offered]
        state.seq += 1
        buttons = [Button(f"{SUGGESTION}{i}", label) for i, label in enumerate(labels)]
        if buttons:
            buttons.append(Button(RETYPE, say(ctx.lang, "pick_retype")))
        step.messages.append(Outbound(text, tuple(buttons),
                                      ref=str(state.seq) if buttons else None))

    # -- moving through the flow --------------------------------------------------------

    def _advance(self, flow: Flow, state: RunState, ctx: Context, step: Step,
                 position: int | None) -> None:
        """Say message nodes and stop at the next node that waits for input, or the end."""
        while position is not None:
            node = flow.nodes[position]
            if node.type is NodeType.END:
                state.node_id = None
                step.messages.append(Outbound(self._text(node, ctx, flow)))
                step.events.append(Finished(node.outcome, node.next_flow))
                return
            if node.type is NodeType.MESSAGE:
                step.messages.append(Outbound(self._text(node, ctx, flow)))
                position = self._first_applicable(flow, position + 1, ctx)
                continue
            state.node_id = node.id
            self._announce_theme(flow, node, state, ctx, step)
            self._ask(flow, node, state, ctx, step)
            return
        state.node_id = None
        step.events.append(Finished(Outcome.COMPLETED, None))

    def _announce_theme(self, flow: Flow, node: Node, state: RunState, ctx: Context,
                        step: Step) -> None:
        """"Thema 2 van 6 · Vakkennis — …" before the first question of each theme, so the
        shopkeeper knows what the next questions are about."""
        if not node.is_question or node.theme is None:
            return
        previous = next((flow.node(n).theme for n in reversed(state.history)
                         if flow.has_node(n) and flow.node(n).is_question), None)
        if previous == node.theme:
            return
        theme = flow.theme(node.theme)
        number = [t.id for t in flow.themes].index(theme.id) + 1
        step.messages.append(Outbound(self.texts.get(
            ctx.lang, "theme_start", n=number, total=len(flow.themes),
            theme=theme.name[ctx.lang], about=theme.about[ctx.lang])))

    def _first_applicable(self, flow: Flow, position: int, ctx: Context) -> int | None:
        for index in range(position, len(flow.nodes)):
            node = flow.nodes[index]
            if not flow.asks(node, ctx.profile):
                continue
            if node.skip_when_known and node.save_as in ctx.profile:
                continue  # e.g. the municipality came with the QR code on a poster
            return index
        return None

    def _ask(self, flow: Flow, node: Node, state: RunState, ctx: Context, step: Step) -> None:
        state.seq += 1
        text = self._text(node, ctx, flow)
        if node.is_question:
            number, total = self.progress(flow, node.id, ctx)
            text = self.texts.get(ctx.lang, "progress", n=number, total=total) + "\n\n" + text
        buttons = [Button(c.id, c.label[ctx.lang]) for c in node.choices]
        if node.is_question:
            if state.history:
                buttons.append(Button(BACK, self.texts.get(ctx.lang, "btn_back")))
            buttons.append(Button(PAUSE, self.texts.get(ctx.lang, "btn_pause")))
        ref = str(state.seq) if buttons else None
        step.messages.append(Outbound(text, tuple(buttons), ref=ref))

    def _reprompt(self, flow: Flow, state: RunState, ctx: Context, step: Step) -> Step:
        if state.node_id is not None:
            self._ask(flow, flow.node(state.node_id), state, ctx, step)
        return step

    def progress(self, flow: Flow, node_id: str, ctx: Context) -> tuple[int, int]:
        """("Vraag n van total") counting only the questions this user gets."""
        asked = [n.id for n in flow.questions() if flow.asks(n, ctx.profile)]
        return (asked.index(node_id) + 1 if node_id in asked else len(asked)), len(asked)

    def _done_with(self, node: Node, state: RunState) -> None:
        if node.waits_for_input and node.id not in state.history:
            state.history.append(node.id)

    def _save(self, name: str, value: str, raw: str | None, ctx: Context, step: Step) -> None:
        ctx.profile[name] = value
        if name == "language":
            ctx.lang = value  # the very next message is already in the new language
        step.events.append(Saved(name, value, raw))

    def _text(self, node: Node, ctx: Context, flow: Flow | None = None) -> str:
        text = node.text_for(flow.audience_of(ctx.profile) if flow else None)
        return text[ctx.lang].format_map(_Placeholders(ctx.profile))

    # -- matching typed text ------------------------------------------------------------

    def _choice_from_text(self, node: Node, text: str, lang: str) -> Choice | None:
        """A typed answer: the button's number, a label or synonym in any language ("oké",
        "d'accord", "yes"), or the unique start of a label in the user's language."""
        typed = normalize(text)
        if typed.isdigit() and 1 <= int(typed) <= len(node.choices):
            return node.choices[int(typed) - 1]
        if not typed:
            return None
        exact = [c for c in node.choices if typed in {normalize(w) for w in c.words}]
        if len(exact) == 1:
            return exact[0]
        prefixed = [c for c in node.choices if normalize(c.label[lang]).startswith(typed)]
        return prefixed[0] if len(prefixed) == 1 else None

    def _suggestion_from_text(self, state: RunState, text: str) -> Place | None:
        typed = normalize(text)
        places = [Place.decode(s) for s in state.suggestions]
        if typed.isdigit() and 1 <= int(typed) <= len(places):
            return places[int(typed) - 1]
        return next((p for p in places
                     if typed in (normalize(p.label), normalize(p.name))
                     and sum(normalize(q.name) == normalize(p.name) for q in places) == 1),
                    None)

    def _means_retype(self, text: str, lang: str, offered: int) -> bool:
        """Typed "type again" (or its number, right after the offered places)."""
        typed = normalize(text)
        return typed == str(offered + 1) or typed == normalize(
            self.texts.get(lang, "pick_retype"))


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
