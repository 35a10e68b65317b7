"""Full-text search over the tip library, per language: which tips answer a question.

The library is data shipped with the bot, so its index is built at start-up in an
in-memory SQLite FTS5 table (whatever database the bot itself uses) and ranked by FTS5's
BM25. Words are reduced to their stem by the Snowball stemmer of the language
(``snowballstemmer``), so "etalages" finds "etalage" and "klanten" finds "klant". A tip has
three texts per language, weighted: its curated ``keywords`` (the words shopkeepers use:
"insta", "kassasysteem"), its action, and its reason. A long stem also matches as the start
of a word ("klant" finds "klantenlijst"): Dutch writes compounds as one word.

Questions are read as shopkeepers type them: a word the tips never use is split into two
they do ("energiekosten": energie + kosten) or corrected to the closest one they do
("revieuws", "etallage"). A question mostly about words no tip uses ("is er subsidie voor
een nieuwe kassa?") finds nothing, and so does a weak match (:data:`MIN_SCORE`): the answer
then says honestly that no tip fits and offers a coach.

How well it does is measured, not guessed: ``benchmarks/tip_search.py`` on the questions of
``tests/data/tip_questions.toml``.
"""

from __future__ import annotations

import difflib
import functools
import re
import sqlite3
import unicodedata
from collections.abc import Iterable

import snowballstemmer

from flows.definition import LANGUAGES
from flows.tips import Tip, TipLibrary

#: Snowball's algorithm per language of the bot.
_STEMMERS = {"nl": "dutch", "en": "english", "fr": "french"}
#: BM25 weight of each text of a tip: a keyword says what a tip is about; the action says
#: what to do; the reason only why. (Against equal weights: recall@3 0.99 not 0.98, MRR
#: 0.96 not 0.94, 75% of tips shown accepted, not 72%.)
_WEIGHTS = {"keywords": 4.0, "action": 1.5, "why": 0.5}
_COLUMNS = tuple(_WEIGHTS)
#: One row per tip, its three texts per language of the bot (flows.definition.LANGUAGES,
#: checked in TipSearch), stemmed; a query names its language's columns. The statements
#: are spelled out: nothing in them comes from outside.
_CREATE = ("CREATE VIRTUAL TABLE tip_words USING fts5(tip_id UNINDEXED, "
           "nl_keywords, nl_action, nl_why, en_keywords, en_action, en_why, "
           "fr_keywords, fr_action, fr_why, tokenize='unicode61 remove_diacritics 2')")
_INSERT = "INSERT INTO tip_words VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: BM25 with one weight per column, as parameters (tip_id's first; the other languages'
#: columns get 0, and the query leaves them out anyway).
_SEARCH = ("SELECT tip_id, bm25(tip_words, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AS score "
           "FROM tip_words WHERE tip_words MATCH ? ORDER BY score")
_TABLE_LANGUAGES = ("nl", "en", "fr")
# The three thresholds below were set on tests/data/tip_questions.toml (not on its
# held-out questions); benchmarks/tip_search.py shows what each does.
#: A tip must score at least this (FTS5's bm25 is negative, better is lower: the weakest
#: match kept scores -MIN_SCORE). Weaker matches share a common word, little more.
#: (2.5: one more question without a fitting tip finds none; recall@3 the same.)
MIN_SCORE = 2.5
#: At least this share of a question's meaningful words must be ones the tips use: a
#: question about something the library never mentions ("subsidie", "zonnepanelen") has
#: no tip to answer it, whatever else it shares with them. (0.6: 7 of 14 questions without
#: a fitting tip find none, against 2 with no such bound; recall@3 0.99, not 1.00.)
MIN_KNOWN = 0.6
#: Tips scoring less than this share of the best one are left out: they matched some
#: other word of the question, not what it is about. (0.5: 75% of the tips shown are ones
#: a coach accepts, against 61% without; recall@3 the same.)
MIN_SHARE = 0.5
#: A question word the tips never use is corrected to one they do when it is this alike
#: (difflib's ratio; "revieuws" and "reviews" 0.93) and at least this long.
_LIKENESS = 0.8
_CORRECT_FROM = 6
#: A question is read up to this many meaningful words, and at most this many of them are
#: looked up as typos (each costs a pass over the vocabulary: a 2,000-character question
#: of unknown words took 0.8 s before this bound).
_MOST_WORDS = 30
_MOST_CORRECTIONS = 5
#: Words shorter than this say little, and a stem this short would match too much as the
#: start of a word.
_SHORTEST = 3
_PREFIX_FROM = 5
#: Words that say as little in a question: matching them would rank tips by how often
#: they say "meer" or "pour".
_COMMON = frozenset("""
    een het wat hoe wie die dat dan als bij van met kan ben zijn heb mij mijn jij jou uw
    meer voor hebben welke waar moet moeten wordt worden deze niet ook maar naar over
    zich heel veel beter goed krijgen krijg doen maken maak kunnen zou zouden iets eens
    winkel winkels zaak zaken graag jullie onze ons waarom wanneer wij hier daar nieuwe
    nieuw nog wel zo al er om te tot nu toe mag mogen zit zitten precies tips tip idee
    ideeën iemand ik je we ze hij zij wil willen best echt ergens altijd allemaal zoveel
    hoeveel weer tegen aantrekkelijk aantrekkelijker leuk leuker mooier interessant starten
    opstarten beginnen begin start
    the and for are how what who why can could should would have has with about from that
    this your does make best better good there when where shop store into some new my
    our you it is do get any way ways tips tip ideas idea want need much many start
    attractive nicer against
    les des une est que qui quoi comment avoir pour plus dans avec faire quel quelle
    quels quelles sont mieux bien cette votre vos notre nos mon mes magasin commerce
    quand pourquoi peut être nouveau nouvelle nouvelles faut il elle ils je tu nous
    vous sur par pas ma ton ta idées idée conseils combien attrayant attrayante
    commencer démarrer lancer contre
    """.split())  # noqa: SIM905 (a word list reads best as words)
_WORD = re.compile(r"[^\W\d_]+")


class TipSearch:
    """The tips of a library, searchable per language (:meth:`find`).

    Args:
        library: The tip library; its keywords, action and reason are indexed.
    """

    def __init__(self, library: TipLibrary) -> None:
        self.library = library
        self._stem = _STEMS
        if LANGUAGES != _TABLE_LANGUAGES:
            raise RuntimeError(f"the tip search has columns for {_TABLE_LANGUAGES}, "
                               f"the bot speaks {LANGUAGES}")
        #: Every word the tips use, per language: what a typed word is corrected to.
        self._vocabulary: dict[str, frozenset[str]] = {}
        #: Every stem in the index, per language: which of a question's words it knows.
        self._indexed: dict[str, frozenset[str]] = {}
        stemmed: dict[str, list[str]] = {tip.id: [] for tip in library.tips}
        for lang in LANGUAGES:
            words: set[str] = set()
            stems: set[str] = set()
            for tip in library.tips:
                for text in (tip.keywords.get(lang, ""), tip.action[lang], tip.why[lang]):
                    words.update(_words(text))
                    stemmed[tip.id].append(self._stem[lang].text(text))
                    stems.update(stemmed[tip.id][-1].split())
            self._vocabulary[lang], self._indexed[lang] = frozenset(words), frozenset(stems)
        # One connection, used only from the event loop; queries take microseconds.
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(_CREATE)
        self._db.executemany(_INSERT, [(tip_id, *texts) for tip_id, texts in stemmed.items()])
        self._db.commit()

    def find(self, question: str, lang: str, *, shop_type: str | None = None,
             limit: int = 3) -> list[Tip]:
        """The tips that best answer ``question`` in ``lang``, best first; never one that
        is meant for another shop type. Empty when no tip matches well enough."""
        if lang not in LANGUAGES:
            return []
        terms = self._terms(question, lang)
        known = [term for term in terms if self._knows(term, lang)]
        if not known or len(known) / len(terms) < MIN_KNOWN:
            return []
        query = " OR ".join('"' + term + '"' + ("*" if len(term) >= _PREFIX_FROM else "")
                            for term in terms)
        columns = " ".join(f"{lang}_{column}" for column in _COLUMNS)
        weights = [0.0] + [_WEIGHTS[column] if of == lang else 0.0
                           for of in LANGUAGES for column in _COLUMNS]
        rows = self._db.execute(_SEARCH, (*weights, f"{{{columns}}} : ({query})")).fetchall()
        found: list[Tip] = []
        best: float | None = None
        for tip_id, score in rows:
            strength = -score
            if strength < MIN_SCORE or (best is not None and strength < best * MIN_SHARE):
                break
            tip = self.library.get(tip_id)
            if tip is None or not tip.fits(shop_type, None):
                continue
            best = strength if best is None else best
            found.append(tip)
            if len(found) == limit:
                break
        return found

    def _terms(self, question: str, lang: str) -> list[str]:
        """The stems of the question's meaningful words, as the tips would write them.
        They go into the FTS5 query quoted, so no word is read as FTS5 syntax."""
        vocabulary, stems = self._vocabulary[lang], self._stem[lang]
        words = [w for w in _words(question) if len(w) >= _SHORTEST and w not in _COMMON]
        corrections = _MOST_CORRECTIONS
        terms: dict[str, None] = {}
        for word in words[:_MOST_WORDS]:
            known = _known(word, vocabulary, correct=corrections > 0)
            corrections -= known is None
            for part in known or [word]:
                stem = stems.word(part)
                if len(stem) >= _SHORTEST:
                    terms[stem] = None
        return list(terms)

    def _knows(self, term: str, lang: str) -> bool:
        """Does some tip use this stem (or, for a long one, a word starting with it)?"""
        indexed = self._indexed[lang]
        return term in indexed or (len(term) >= _PREFIX_FROM
                                   and any(stem.startswith(term) for stem in indexed))


class _Stems:
    """One language's Snowball stemmer (pure Python: stemming the library's ~20,000 words
    takes a few tenths of a second, so stems are kept for the process, whichever
    :class:`TipSearch` asks; questions are free text, so what is kept is bounded)."""

    def __init__(self, algorithm: str) -> None:
        self._stemmer = snowballstemmer.stemmer(algorithm)
        self.word = functools.lru_cache(maxsize=100_000)(self._stem)

    def _stem(self, word: str) -> str:
        return _plain(self._stemmer.stemWord(word))

    def text(self, text: str) -> str:
        return " ".join(self.word(word) for word in _words(text))


_STEMS = {lang: _Stems(algorithm) for lang, algorithm in _STEMMERS.items()}


def _words(text: str) -> Iterable[str]:
    return (word.lower() for word in _WORD.findall(text))


def _plain(word: str) -> str:
    """Without accents, as the index's tokenizer folds them (ideeën, idées)."""
    return "".join(c for c in unicodedata.normalize("NFD", word)
                   if not unicodedata.combining(c))


def _known(word: str, vocabulary: frozenset[str], *, correct: bool) -> list[str] | None:
    """``word`` as the tips would write it: itself when they use it, else the two words
    it is made of (a Dutch compound, with or without the linking s), else (when asked to
    ``correct`` it) the closest word they use; ``None`` when it was looked for in vain."""
    if word in vocabulary:
        return [word]
    for split in range(len(word) - _SHORTEST, _SHORTEST, -1):  # the longest head first
        head, tail = word[:split], word[split:]
        if head in vocabulary:
            for rest in (tail, tail[1:] if tail[0] == "s" else ""):
                if rest in vocabulary:
                    return [head, rest]
    if len(word) < _CORRECT_FROM:  # a short word is more often one the tips lack than a typo
        return [word]
    if not correct:
        return [word]
    return difflib.get_close_matches(word, vocabulary, n=1, cutoff=_LIKENESS) or None
