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
from flows.places import Gazetteer, gazetteer, normalize
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
#: (ids stay short: channels put them in callback data of at most 64 bytes).
RETYPE = "_retype"
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
        name, raw = None, None
        if reply.choice == RETYPE:
            state.suggestions = []
            self._ask(flow, node, state, ctx, step)
            return
        if reply.choice is not None and reply.choice.startswith(SUGGESTION):
            index = reply.choice.removeprefix(SUGGESTION)
            if index.isdigit() and int(index) < len(state.suggestions):
                name = state.suggestions[int(index)]
        elif reply.text is not None:
            picked = self._suggestion_from_text(state, reply.text)
            if picked is not None:
                name = picked
            else:
                match = self.places.find(reply.text)
                name, raw = match.name, match.alias_of
                if name is None:
                    state.suggestions = list(match.suggestions)
                    key = "pick_suggest" if match.suggestions else "pick_unknown"
                    state.seq += 1
                    buttons = [Button(f"{SUGGESTION}{i}", name)
                               for i, name in enumerate(match.suggestions)]
                    if buttons:
                        buttons.append(Button(RETYPE, self.texts.get(ctx.lang, "pick_retype")))
                    step.messages.append(Outbound(
                        self.texts.get(ctx.lang, key, text=reply.text.strip()[:40]),
                        tuple(buttons), ref=str(state.seq) if buttons else None))
                    return
        if name is None:
            self._reprompt(flow, state, ctx, step)
            return
        state.suggestions = []
        state.answers[node.id] = name
        assert node.save_as is not None
        self._save(node.save_as, name, raw, ctx, step)
        self._done_with(node, state)
        self._advance(flow, state, ctx, step,
                      self._first_applicable(flow, flow.position(node.id) + 1, ctx))

    # -- moving through the flow --------------------------------------------------------

    def _advance(self, flow: Flow, state: RunState, ctx: Context, step: Step,
                 position: int | None) -> None:
        """Say message nodes and stop at the next node that waits for input, or the end."""
        while position is not None:
            node = flow.nodes[position]
            if node.type is NodeType.END:
                state.node_id = None
                step.messages.append(Outbound(self._text(node, ctx)))
                step.events.append(Finished(node.outcome, node.next_flow))
                return
            if node.type is NodeType.MESSAGE:
                step.messages.append(Outbound(self._text(node, ctx)))
                position = self._first_applicable(flow, position + 1, ctx)
                continue
            state.node_id = node.id
            self._ask(flow, node, state, ctx, step)
            return
        state.node_id = None
        step.events.append(Finished(Outcome.COMPLETED, None))

    def _first_applicable(self, flow: Flow, position: int, ctx: Context) -> int | None:
        for index in range(position, len(flow.nodes)):
            node = flow.nodes[index]
            if node.skip_if is not None and node.skip_if.applies(ctx.profile):
                continue
            if node.skip_when_known and node.save_as in ctx.profile:
                continue  # e.g. the municipality came with the QR code on a poster
            return index
        return None

    def _ask(self, flow: Flow, node: Node, state: RunState, ctx: Context, step: Step) -> None:
        state.seq += 1
        text = self._text(node, ctx)
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
        asked = [n.id for n in flow.questions()
                 if n.skip_if is None or not n.skip_if.applies(ctx.profile)]
        return (asked.index(node_id) + 1 if node_id in asked else len(asked)), len(asked)

    def _done_with(self, node: Node, state: RunState) -> None:
        if node.waits_for_input and node.id not in state.history:
            state.history.append(node.id)

    def _save(self, name: str, value: str, raw: str | None, ctx: Context, step: Step) -> None:
        ctx.profile[name] = value
        if name == "language":
            ctx.lang = value  # the very next message is already in the new language
        step.events.append(Saved(name, value, raw))

    def _text(self, node: Node, ctx: Context) -> str:
        return node.text[ctx.lang].format_map(_Placeholders(ctx.profile))

    # -- matching typed text ------------------------------------------------------------

    def _choice_from_text(self, node: Node, text: str, lang: str) -> Choice | None:
        typed = normalize(text)
        if typed.isdigit() and 1 <= int(typed) <= len(node.choices):
            return node.choices[int(typed) - 1]
        if not typed:
            return None
        exact = [c for c in node.choices if typed in {normalize(v) for v in c.label.values()}]
        if len(exact) == 1:
            return exact[0]
        prefixed = [c for c in node.choices if normalize(c.label[lang]).startswith(typed)]
        return prefixed[0] if len(prefixed) == 1 else None

    def _suggestion_from_text(self, state: RunState, text: str) -> str | None:
        typed = normalize(text)
        if typed.isdigit() and 1 <= int(typed) <= len(state.suggestions):
            return state.suggestions[int(typed) - 1]
        return next((s for s in state.suggestions if normalize(s) == typed), None)


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
