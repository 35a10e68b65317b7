"""The pure engine: answers, going back, skipping, typed answers, pick suggestions, stale refs."""

from __future__ import annotations

from flows.definition import Flow, Outcome
from flows.engine import RETYPE, Context, Engine, RunState
from flows.messages import BACK, PAUSE, Finished, Reply, Saved


def start_assessment(engine: Engine, flow: Flow, profile: dict[str, str] | None = None,
                     lang: str = "nl") -> tuple[Context, RunState]:
    ctx = Context(lang, dict(profile or {}))
    _, state = engine.start(flow, ctx)
    assert state.node_id == flow.questions()[0].id
    return ctx, state


def test_start_says_the_intro_then_asks_question_one_with_progress(
        engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    step, state = engine.start(flow, Context("nl", {"team_size": "2_4"}))
    intro, theme, question = step.messages
    assert "6 minuten" in intro.text and "26 korte vragen" in intro.text
    assert theme.text.startswith("Thema 1 van 6 · Beleving\nHoe je zaak aanvoelt")
    assert question.text.startswith("Vraag 1 van 26\n\n")
    assert question.ref == str(state.seq)
    ids = [b.id for b in question.buttons]
    assert PAUSE in ids and BACK not in ids  # nothing to go back to yet


def test_a_one_person_shop_skips_the_staff_question(engine: Engine,
                                                    library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow, {"team_size": "solo"})
    assert engine.progress(flow, state.node_id or "", ctx) == (1, 25)
    seen = []
    while state.node_id is not None:
        seen.append(state.node_id)
        engine.answer(flow, state, Reply(text="1"), ctx)
    assert "vakkennis_team" not in seen and len(seen) == 25


def test_answer_by_button_number_or_label_in_any_language(engine: Engine,
                                                           library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx = Context("nl")
    _, state = engine.start(flow, ctx)
    assert state.node_id == "language"
    step = engine.answer(flow, state, Reply(text="français"), ctx)
    assert step.events == [Saved("language", "fr")]
    assert ctx.lang == "fr"
    assert "D'accord ?" in step.messages[-1].text  # the consent question, already in French
    engine.answer(flow, state, Reply(text="OUI, D'ACCORD"), ctx)
    assert state.node_id == "shop_name"


def test_an_unclear_answer_asks_again_and_changes_nothing(engine: Engine,
                                                          library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow)
    before = state.node_id
    step = engine.answer(flow, state, Reply(text="🤷 geen idee eigenlijk"), ctx)
    assert state.node_id == before and not state.answers
    assert "Kies een van de antwoorden" in step.messages[0].text
    assert step.messages[1].buttons


def test_back_forgets_the_last_answer_and_asks_it_again(engine: Engine,
                                                        library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow)
    first = state.node_id or ""
    engine.answer(flow, state, Reply(text="1"), ctx)
    step = engine.back(flow, state, ctx)
    assert state.node_id == first and first not in state.answers
    assert step.messages[0].text.startswith("Vraag 1 van")
    step = engine.back(flow, state, ctx)
    assert "eerste vraag" in step.messages[0].text
    assert state.node_id == first


def test_a_button_from_an_older_prompt_is_stale(engine: Engine,
                                                library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow)
    old_ref = str(state.seq)
    choice = flow.questions()[0].choices[0].id
    engine.answer(flow, state, Reply(choice=choice, ref=old_ref), ctx)
    answered = dict(state.answers)
    step = engine.answer(flow, state, Reply(choice=choice, ref=old_ref), ctx)
    assert step.stale and not step.messages
    assert state.answers == answered


def test_shop_name_is_validated_and_whitespace_folded(engine: Engine,
                                                      library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx = Context("en")
    _, state = engine.start(flow, ctx)
    engine.answer(flow, state, Reply(choice="en", ref=str(state.seq)), ctx)
    engine.answer(flow, state, Reply(choice="yes", ref=str(state.seq)), ctx)
    step = engine.answer(flow, state, Reply(text="x"), ctx)
    assert "at least 2 characters" in step.messages[0].text
    step = engine.answer(flow, state, Reply(text="y" * 81), ctx)
    assert "80 characters" in step.messages[0].text
    step = engine.answer(flow, state, Reply(text="  The   Corner  Shop 📚 "), ctx)
    assert step.events == [Saved("shop_name", "The Corner Shop 📚")]
    assert "The Corner Shop 📚" in step.messages[0].text  # the next question greets the shop


def at_municipality(engine: Engine, flow: Flow) -> tuple[Context, RunState]:
    """Onboarding answered up to the municipality question (Dutch, consent, a shop name)."""
    ctx = Context("nl")
    _, state = engine.start(flow, ctx)
    for answer in ("1", "1", "Bakkerij Dewitte"):
        engine.answer(flow, state, Reply(text=answer), ctx)
    assert state.node_id == "municipality"
    return ctx, state


def test_municipality_typo_gives_suggestions_then_saves_the_pick(
        engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    step = engine.answer(flow, state, Reply(text="Kortryk"), ctx)
    [suggest] = step.messages
    assert suggest.buttons[0].label == "Kortrijk"
    assert suggest.buttons[-1].id == RETYPE
    step = engine.answer(flow, state, Reply(choice=suggest.buttons[0].id, ref=suggest.ref), ctx)
    assert step.events == [Saved("municipality", "Kortrijk", None)]
    assert state.node_id == "shop_type"


def test_an_old_municipality_name_is_saved_with_what_was_typed(
        engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    step = engine.answer(flow, state, Reply(text="meulebeke"), ctx)
    assert step.events == [Saved("municipality", "Tielt", "Meulebeke")]


def test_refusing_consent_ends_the_flow_with_the_refused_outcome(
        engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx = Context("nl")
    _, state = engine.start(flow, ctx)
    engine.answer(flow, state, Reply(text="1"), ctx)
    step = engine.answer(flow, state, Reply(text="nee"), ctx)
    assert step.finished == Finished(Outcome.REFUSED, None)
    assert state.node_id is None
    assert "bewaar ik niets" in step.messages[-1].text


def test_state_survives_a_json_round_trip(engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow)
    engine.answer(flow, state, Reply(text="2"), ctx)
    assert RunState.from_data(state.to_data()) == state


def test_each_theme_is_announced_once_when_it_starts(engine: Engine,
                                                      library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow, {"team_size": "2_4"}, lang="fr")
    announced = []
    while state.node_id is not None:
        step = engine.answer(flow, state, Reply(text="1"), ctx)
        announced += [m.text.split("\n")[0] for m in step.messages
                      if m.text.startswith("Thème ")]
    assert announced == [f"Thème {n} sur 6 · {t.name['fr']}"
                         for n, t in enumerate(flow.themes[1:], start=2)]


def test_horeca_and_services_read_their_own_wording(engine: Engine,
                                                     library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    ctx, state = start_assessment(engine, flow, {"team_size": "2_4",
                                                 "shop_type": "horeca_services"})
    texts = []
    while state.node_id is not None:
        texts += [m.text for m in engine.answer(flow, state, Reply(text="1"), ctx).messages]
    joined = "\n".join(texts)
    assert "meest gevraagde diensten" in joined
    assert "best verkopende producten" not in joined


def test_consent_understands_the_shopkeepers_own_words(engine: Engine,
                                                        library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    for typed, expected in [("ok", "yes"), ("Oké", "yes"), ("akkoord", "yes"),
                            ("goed", "yes"), ("ja hoor", "yes"), ("yes", "yes"),
                            ("d'accord", "yes"), ("oui", "yes"), ("neen", "no"),
                            ("nee hoor", "no")]:
        ctx = Context("nl")
        _, state = engine.start(flow, ctx)
        engine.answer(flow, state, Reply(text="1"), ctx)  # Nederlands
        step = engine.answer(flow, state, Reply(text=typed), ctx)
        assert Saved("consent", expected, None) in step.events, typed


def test_a_deelgemeente_is_saved_under_its_municipality(engine: Engine,
                                                          library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    step = engine.answer(flow, state, Reply(text="heule"), ctx)
    assert step.events == [Saved("municipality", "Kortrijk", "Heule")]


def test_an_ambiguous_name_asks_which_one(engine: Engine, library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    [which] = engine.answer(flow, state, Reply(text="Zandvoorde"), ctx).messages
    assert "bestaat meer dan eens" in which.text
    assert [b.label for b in which.buttons] == [
        "Zandvoorde (Oostende)", "Zandvoorde (Zonnebeke)", "Opnieuw typen"]
    step = engine.answer(flow, state, Reply(text="2"), ctx)
    assert step.events == [Saved("municipality", "Zonnebeke", "Zandvoorde")]


def test_a_place_outside_the_province_gets_its_own_answer(engine: Engine,
                                                            library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    [answer] = engine.answer(flow, state, Reply(text="Moeskroen"), ctx).messages
    assert answer.text.startswith("Moeskroen ligt in Henegouwen, buiten West-Vlaanderen.")
    assert [b.label for b in answer.buttons] == ["Verder met Moeskroen", "Opnieuw typen"]
    step = engine.answer(flow, state, Reply(text="Roeselare"), ctx)  # typed it again
    assert step.events == [Saved("municipality", "Roeselare", None)]


def test_type_it_again_is_an_answer_not_a_pause(engine: Engine,
                                                 library: dict[str, Flow]) -> None:
    flow = library["onboarding"]
    ctx, state = at_municipality(engine, flow)
    [suggest] = engine.answer(flow, state, Reply(text="Kortryk"), ctx).messages
    retype = suggest.buttons[-1]
    assert retype.id == RETYPE and not retype.steers  # the terminal numbers it
    step = engine.answer(flow, state, Reply(text=str(len(suggest.buttons))), ctx)
    assert state.node_id == "municipality" and "In welke gemeente" in step.messages[0].text
