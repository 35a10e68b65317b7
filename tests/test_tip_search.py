"""The offline answer: which tips the full-text search finds for a shopkeeper's question.

The evaluation set (``tests/data/tip_questions.toml``) holds real-sounding questions and the
tips a coach would accept among the first three; :func:`evaluate` scores a search on it, and
``benchmarks/tip_search.py`` prints the same figures per language.
"""

from __future__ import annotations

import random
import shutil
import string
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.loader import FlowError
from flows.tips import CALENDAR, TIPS_DIR, TipLibrary, load_tips
from storage.tip_search import TipSearch

QUESTIONS_FILE = Path(__file__).resolve().parent / "data" / "tip_questions.toml"
#: A coach reads the first three tips found (handlers/questions.py shows three).
TOP = 3


@dataclass(frozen=True, slots=True)
class Question:
    """A question of the evaluation set and the tips a coach accepts for it (none: the
    honest answer is that no tip fits)."""

    lang: str
    text: str
    tips: frozenset[str]
    shop_type: str = "other"
    held_out: bool = False  # written after the search was tuned, and not tuned on


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the search returned for one question."""

    question: Question
    found: tuple[str, ...]

    @property
    def rank(self) -> int | None:
        """1-based rank of the first accepted tip among those found."""
        return next((i for i, tip in enumerate(self.found, start=1)
                     if tip in self.question.tips), None)


@dataclass(frozen=True, slots=True)
class Figures:
    """Recall@3 and MRR over the questions that have an answer, and the share of the tips
    found for them that a coach accepts; how often a question without one still got tips."""

    answerable: int
    recall: float
    mrr: float
    precision: float
    unanswerable: int
    false_found: float


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    """The evaluation set, checked: every tip it names exists in the library."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["spec_version"] == 1
    known = {tip.id for tip in load_tips().tips}
    questions = []
    for item in data["questions"]:
        unknown = set(item["tips"]) - known
        assert not unknown, f"{item['text']!r} names unknown tips {sorted(unknown)}"
        questions.append(Question(item["lang"], item["text"], frozenset(item["tips"]),
                                  item.get("shop_type", "other"), item.get("held_out", False)))
    return questions


def run(search: TipSearch, questions: Sequence[Question]) -> list[Outcome]:
    """Ask ``search`` every question, as handlers/questions.py does."""
    return [Outcome(q, tuple(tip.id for tip in search.find(q.text, q.lang,
                                                           shop_type=q.shop_type, limit=TOP)))
            for q in questions]


def figures(outcomes: Sequence[Outcome]) -> Figures:
    """The figures of some outcomes (e.g. one language's)."""
    answerable = [o for o in outcomes if o.question.tips]
    unanswerable = [o for o in outcomes if not o.question.tips]
    ranks = [o.rank for o in answerable]
    shown = [tip in o.question.tips for o in answerable for tip in o.found]
    return Figures(
        answerable=len(answerable),
        recall=sum(r is not None for r in ranks) / len(answerable) if answerable else 0.0,
        mrr=sum(1 / r for r in ranks if r is not None) / len(answerable) if answerable else 0.0,
        precision=sum(shown) / len(shown) if shown else 0.0,
        unanswerable=len(unanswerable),
        false_found=(sum(bool(o.found) for o in unanswerable) / len(unanswerable)
                     if unanswerable else 0.0))


SEARCH = TipSearch(load_tips())
QUESTIONS = load_questions()
ASKED = run(SEARCH, QUESTIONS)
OUTCOMES = [o for o in ASKED if not o.question.held_out]  # the questions it was tuned on
HELD_OUT = [o for o in ASKED if o.question.held_out]


def _ids(question: str, lang: str = "nl", shop_type: str = "other") -> list[str]:
    return [tip.id for tip in SEARCH.find(question, lang, shop_type=shop_type)]


# -- the evaluation set: a floor a little under what the search reaches ------------------


def test_the_evaluation_set_covers_three_languages_and_questions_without_a_tip() -> None:
    for lang, least in (("nl", 50), ("en", 10), ("fr", 10)):
        assert sum(q.lang == lang for q in QUESTIONS) >= least
    assert sum(not q.tips for q in QUESTIONS) >= 10
    assert len(HELD_OUT) >= 20
    assert len({(q.lang, q.text) for q in QUESTIONS}) == len(QUESTIONS)


def test_recall_at_three_and_mrr_stay_above_their_floor() -> None:
    # Reached when written (benchmarks/tip_search.py): 0.99 / 0.96 overall; nl 0.99,
    # en 1.00, fr 1.00. Main's trigram search reached 0.71 / 0.63 (nl 0.64).
    overall = figures(OUTCOMES)
    assert overall.recall >= 0.95 and overall.mrr >= 0.90
    for lang in ("nl", "en", "fr"):
        assert figures([o for o in OUTCOMES if o.question.lang == lang]).recall >= 0.9, lang


def test_questions_the_search_was_not_tuned_on_still_mostly_find_a_good_tip() -> None:
    # Reached when written: recall@3 0.75, MRR 0.64 (main's search: 0.50, 0.47); questions
    # without a fitting tip still get one (5 of 6, as on main): see the benchmark's misses.
    held = figures(HELD_OUT)
    assert held.recall >= 0.7 and held.mrr >= 0.55


def test_most_tips_shown_are_ones_a_coach_would_give() -> None:
    # 0.75 when written; main's search: 0.40.
    assert figures(OUTCOMES).precision >= 0.65


def test_questions_no_tip_answers_mostly_get_none() -> None:
    # 0.50 when written (7 of 14: questions about rent, VAT or a student's wage share
    # every word with some tip); main's search: 0.86.
    assert figures(OUTCOMES).false_found <= 0.6


# -- the cases of the issue -----------------------------------------------------------------


def test_a_window_question_gets_window_tips_not_a_seasonal_corner() -> None:
    found = _ids("hoe maak ik mijn etalage aantrekkelijker")
    assert found and set(found) <= {"bel_etalage_avond", "bel_ingang", "bel_blikvanger",
                                    "bel_licht_spots", "tok_passanten"}
    assert _ids("shop window ideas", "en")[0] == "bel_etalage_avond"
    assert _ids("des idées pour ma vitrine", "fr")[0] == "bel_etalage_avond"
    assert _ids("sinterklaas etalage")[0] == "bel_etalage_sint"  # when asked for, it comes


def test_words_the_tips_never_say_but_shopkeepers_do_find_them() -> None:
    social = {"dig_achter_schermen", "dig_maandplan_posts", "dig_fotohoek",
              "dig_recept_seizoen", "and_jonge_blik"}
    assert _ids("wat zet ik op instagram")[0] in social
    assert _ids("insta")[0] in social
    assert _ids("kassasysteem")[0] in {"dig_eigen_login", "dig_betaalkosten"}
    assert _ids("is een klantenkaart nog de moeite?")
    assert _ids("mystery shopper")


def test_a_compound_the_tips_do_not_use_is_read_as_its_parts() -> None:
    # "energiekosten" is in no tip text; energie + kosten are.
    found = _ids("energiekosten besparen")
    assert found and all(tip.startswith("tok_energie_") for tip in found)


def test_a_typo_is_read_as_the_word_the_tips_use() -> None:
    assert _ids("hoe krijg ik meer revieuws")[0] in {"dig_review_lezen", "dig_review_negatief"}
    assert _ids("nieuwsbreif opstarten")[0] == "dig_mail_inschrijven"
    assert _ids("tips voor mijn etallage") == _ids("tips voor mijn etalage")


def test_a_subsidy_question_finds_no_tip_in_any_language() -> None:
    assert _ids("is er subsidie voor een nieuwe kassa?") == []
    assert _ids("is there a grant for a new till?", "en") == []
    assert _ids("y a-t-il une subvention pour une nouvelle caisse ?", "fr") == []
    # …while the training budget the tips do know about is found.
    assert _ids("krijg ik subsidie voor een opleiding? kmo portefeuille")[0] == \
        "vak_opleidingsplan"


def test_each_language_searches_its_own_texts() -> None:
    assert _ids("fête des mères", "fr")[0] in {"bel_cadeau_moederdag", "dig_mail_moederdag"}
    assert _ids("fête des mères", "nl") == []
    assert SEARCH.find("moederdag", "de") == []


def test_tips_for_another_shop_type_are_never_found() -> None:
    assert "tok_derving" in _ids("ik gooi te veel eten weg", shop_type="food")
    assert "tok_derving" not in _ids("ik gooi te veel eten weg", shop_type="fashion")
    for question in QUESTIONS:
        for shop_type in ("food", "horeca_services", None):
            assert all(tip.fits(shop_type, None) for tip in SEARCH.find(
                question.text, question.lang, shop_type=shop_type))


def test_fts5_syntax_in_a_question_is_only_words() -> None:
    for question in ('" OR * NEAR(', "nl_keywords : peppol", "{en_action} : review",
                     "peppol AND NOT ^x", "'; DROP TABLE tip_words; --", ""):
        SEARCH.find(question, "nl")  # no sqlite3.OperationalError
    assert _ids("nl_why : peppol") == _ids("peppol")


def test_the_longest_question_of_words_no_tip_uses_finds_nothing() -> None:
    # At most five of its words are looked up as typos (benchmarks/tip_search.py: ~20 ms).
    rng = random.Random(12)
    gibberish = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12)))
                         for _ in range(250))[:2000]
    assert SEARCH.find(gibberish, "nl") == []


# -- keywords in the tip data ------------------------------------------------------------


def test_every_tip_has_keywords_in_every_language() -> None:
    for tip in load_tips().tips:
        assert set(tip.keywords) == {"nl", "en", "fr"}, tip.id


TIP = """
[[tips]]
id = "extra_tip"
kind = "etalage"
effort = "quick"
action = {{ nl = "Zet een xylofoon in je etalage.", en = "Put a xylophone in your window.", fr = "Mettez un xylophone en vitrine." }}
why = {{ nl = "Daarom.", en = "Because.", fr = "Parce que." }}
{more}
"""  # noqa: E501 (a tip is one line per field, as in flows/tips)


def _library(tmp_path: Path, more: str) -> TipLibrary:
    folder = tmp_path / "tips"
    shutil.copytree(TIPS_DIR, folder)
    path = folder / "innovatie.toml"
    path.write_text(path.read_text(encoding="utf-8") + TIP.format(more=more),
                    encoding="utf-8")
    return load_tips(folder, CALENDAR)


def test_keywords_are_optional_and_found_when_there(tmp_path: Path) -> None:
    plain = TipSearch(_library(tmp_path / "a", ""))
    assert [t.id for t in plain.find("xylofoon", "nl", shop_type="other")] == ["extra_tip"]
    assert plain.find("marimba", "nl", shop_type="other") == []
    keyed = TipSearch(_library(tmp_path / "b", 'keywords = { nl = "marimba, slagwerk", '
                                               'en = "marimba", fr = "marimba" }'))
    assert [t.id for t in keyed.find("marimba", "nl", shop_type="other")] == ["extra_tip"]


@pytest.mark.parametrize(("keywords", "reason"), [
    ('{ nl = "insta", en = "insta" }', "keywords has no 'fr' text"),
    ('{ nl = "insta, , socials", en = "insta", fr = "insta" }', "'' is not a word"),
    ('{ nl = "insta; socials!", en = "insta", fr = "insta" }', "'insta; socials!' is not"),
    ('{ nl = "insta, insta", en = "insta", fr = "insta" }', "keywords 'nl' names a word twice"),
    ('"insta"', "keywords must be a table of texts per language"),
])
def test_broken_keywords_are_refused_with_their_line(tmp_path: Path, keywords: str,
                                                      reason: str) -> None:
    with pytest.raises(FlowError) as caught:
        _library(tmp_path, f"keywords = {keywords}")
    assert "innovatie.toml:" in str(caught.value) and "[node extra_tip]" in str(caught.value)
    assert reason in str(caught.value)
