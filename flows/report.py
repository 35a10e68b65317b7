"""Say an assessment result in a few short messages that read well on a phone."""

from __future__ import annotations

from flows.definition import Flow
from flows.messages import Outbound
from flows.scoring import Result
from flows.texts import Texts

#: Keep each message short enough to read without scrolling on a small phone.
MESSAGE_BUDGET = 600


def theme_names(flow: Flow, lang: str) -> dict[str, str]:
    return {t.id: t.name[lang] for t in flow.themes}


def render(flow: Flow, result: Result, texts: Texts, lang: str) -> list[Outbound]:
    """Scores per theme, strengths and focus, then the first actions (split to fit)."""
    names = theme_names(flow, lang)
    overall_level = flow.level_for(result.overall)
    lines = [texts.get(lang, "result_title", score=result.overall,
                       level=overall_level.name[lang])]
    for theme in flow.themes:
        value = result.scores[theme.id]
        lines.append(texts.get(lang, "result_line", theme=names[theme.id], score=value,
                               level=flow.level_for(value).name[lang]))
    messages = [Outbound("\n".join(lines))]

    strong = [names[t] for t in result.strongest]
    focus = [names[t] for t in result.focus]
    messages.append(Outbound(texts.get(
        lang, "result_strong_focus", strong1=strong[0], strong2=strong[-1],
        focus1=focus[0], focus2=focus[-1], about=overall_level.about[lang])))

    if not result.actions:
        messages.append(Outbound(texts.get(lang, "result_no_actions")))
        messages.append(Outbound(texts.get(lang, "result_next")))
        return messages
    items = []
    for number, node_id in enumerate(result.actions, start=1):
        node = flow.node(node_id)
        assert node.action is not None and node.theme is not None  # the loader requires it
        items.append(texts.get(lang, "result_action", n=number, theme=names[node.theme],
                               action=node.action[lang]))
    messages.extend(_pack(texts.get(lang, "result_actions_title"), items))
    messages.append(Outbound(texts.get(lang, "result_next")))
    return messages


def _pack(title: str, items: list[str]) -> list[Outbound]:
    """Put items in as few messages as fit the budget, the title on the first."""
    messages: list[str] = []
    current = title
    for item in items:
        if current and len(current) + 2 + len(item) > MESSAGE_BUDGET:
            messages.append(current)
            current = item
        else:
            current = f"{current}\n\n{item}" if current else item
    messages.append(current)
    return [Outbound(m) for m in messages]
