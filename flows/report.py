"""Say an assessment result in a few short messages that read well on a phone.

The words follow :class:`flows.scoring.Result` and never contradict the scores: no strengths
at 25 or less, no focus at 100, no "this one differs" when all themes are about equal, and a
level text that names the weakest theme when it is still at the start.
"""

from __future__ import annotations

from flows.definition import Flow
from flows.messages import Outbound
from flows.scoring import STARTING_MAX, Result
from flows.texts import Texts

#: Keep each message short enough to read without scrolling on a small phone.
MESSAGE_BUDGET = 600


def theme_names(flow: Flow, lang: str) -> dict[str, str]:
    return {t.id: t.name[lang] for t in flow.themes}


def render(flow: Flow, result: Result, texts: Texts, lang: str) -> list[Outbound]:
    """Scores per theme; then what they mean; then the first actions (split to fit)."""
    names = theme_names(flow, lang)
    overall_level = flow.level_for(result.overall)
    lines = [texts.get(lang, "result_title", score=result.overall,
                       level=overall_level.name[lang])]
    for theme in flow.themes:
        value = result.scores[theme.id]
        lines.append(texts.get(lang, "result_line", theme=names[theme.id], score=value,
                               level=flow.level_for(value).name[lang]))
    messages = [Outbound("\n".join(lines))]
    if not result.actions:
        messages.append(Outbound(texts.get(lang, "result_no_actions")))
        messages.append(Outbound(texts.get(lang, "result_next")))
        return messages

    summary = _summary(flow, result, texts, lang)
    actions = _action_items(flow, result, texts, lang)
    if result.starting:
        # Everything is still at the start: lead with what can be done this week.
        messages.extend(_pack(texts.get(lang, "result_quick_wins_title"), actions))
        messages.append(Outbound(summary))
    else:
        messages.append(Outbound(summary))
        messages.extend(_pack(texts.get(lang, "result_actions_title"), actions))
    messages.append(Outbound(texts.get(lang, "result_next")))
    return messages


def _summary(flow: Flow, result: Result, texts: Texts, lang: str) -> str:
    names = theme_names(flow, lang)
    parts: list[str] = []
    if result.flat:
        low, high = min(result.scores.values()), max(result.scores.values())
        parts.append(texts.get(lang, "result_flat", low=low, high=high))
    if result.strongest:
        parts.append(texts.get(lang, "result_strong",
                               themes=_join([names[t] for t in result.strongest], texts, lang)))
    if result.focus:
        items = [texts.get(lang, "result_focus_item", theme=names[t],
                           about=flow.theme(t).about[lang]) for t in result.focus]
        parts.append("\n".join([texts.get(lang, "result_focus_title"), *items]))
    parts.append(level_text(flow, result, lang, names))
    return "\n\n".join(parts)


def level_text(flow: Flow, result: Result, lang: str, names: dict[str, str]) -> str:
    """The overall level's text, or its "uneven" form when a theme is still at the start:
    an overall 50 over three themes at 0-25 is not "the basics are in place"."""
    level = flow.level_for(result.overall)
    weakest = result.weakest
    if (level.about_uneven is not None and weakest is not None
            and result.scores[weakest] <= STARTING_MAX < result.overall):
        return level.about_uneven[lang].format(weakest=names[weakest])
    return level.about[lang]


def _action_items(flow: Flow, result: Result, texts: Texts, lang: str) -> list[str]:
    names = theme_names(flow, lang)
    return [texts.get(lang, "result_action", n=number, theme=names[action.theme],
                      action=action.text[lang])
            for number, action in enumerate(result.actions, start=1)]


def _join(items: list[str], texts: Texts, lang: str) -> str:
    """"A en B", "A, B en C": the last pair joined by the language's "and"."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + texts.get(lang, "and") + items[-1]


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
