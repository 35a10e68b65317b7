"""Full-text search over the tip library, per language: which tips answer a question.

The library is data shipped with the bot, so its index is built at start-up in in-memory
SQLite FTS5 tables (one per language, whatever database the bot itself uses) and ranked by
FTS5's BM25. Words are reduced to their stem by the Snowball stemmer of the language
(``snowballstemmer``), so "etalages" finds "etalage" and "klanten" finds "klant"; each tip
has three columns, weighted: its curated ``keywords`` (the words shopkeepers use: "insta",
"kassa"), its action, and its reason. A stem also matches as the start of a longer word
("klant" finds "klantenlijst"), since Dutch writes compounds as one word.

Questions are read as shopkeepers type them: a word the tips never use is corrected to the
closest one they do ("revieuws", "etallage"), or split into two they do ("energiekosten":
energie + kosten). A match must reach :data:`MIN_SCORE`: a question that only shares a
common word with some tips ("is er subsidie voor een nieuwe kassa?") finds nothing, and the
answer says so honestly and offers a coach.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import unicodedata
from collections.abc import Iterable

import snowballstemmer

from flows.definition import LANGUAGES
from flows.tips import Tip, TipLibrary

#: Snowball's algorithm per language of the bot.
_STEMMERS = {"nl": "dutch", "en": "english", "fr": "french"}
#: Column weights for BM25, in column order (tip_id is not indexed): a keyword says what a
#: tip is about; the action says what to do; the reason only why.
_WEIGHTS = {"tip_id": 0.0, "keywords": 4.0, "action": 1.5, "why": 0.5}
#: A tip must score at least this (FTS5's bm25 is negative: better is lower, so the
#: weakest accepted match is -MIN_SCORE). Measured on tests/data/tip_questions.toml: below
#: it, tips found are mostly ones a coach would not give.
MIN_SCORE = 2.5
#: At least this share of a question's meaningful words must be ones the tips use: a
#: question about something the library never mentions ("subsidie", "zonnepanelen") has
#: no tip to answer it, whatever else it shares with them.
MIN_KNOWN = 0.6
#: Tips scoring less than this share of the best one are left out: they matched some
#: other word of the question, not what it is about.
MIN_SHARE = 0.5
#: A question word the tips never use is corrected to one they do at this likeness
#: (difflib's ratio): "revieuws" → "reviews", not "subsidie" → "subsidies"… of nothing.
_LIKENESS = 0.8
_CORRECT_FROM = 6
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
        self._stem = {lang: _Stems(_STEMMERS[lang]) for lang in LANGUAGES}
        #: Every word the tips use, per language: what a typed word is corrected to.
        self._vocabulary: dict[str, frozenset[str]] = {}
        #: Every stem in the index, per language: which of a question's words it knows.
        self._indexed: dict[str, frozenset[str]] = {}
        # One connection, used only from the event loop; queries take microseconds.
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        for lang in LANGUAGES:
            self._db.execute(f"CREATE VIRTUAL TABLE tips_{lang} USING fts5("
                             "tip_id UNINDEXED, keywords, action, why, "
                             "tokenize='unicode61 remove_diacritics 2')")
            words: set[str] = set()
            rows = []
            for tip in library.tips:
                texts = (tip.keywords.get(lang, ""), tip.action[lang], tip.why[lang])
                rows.append((tip.id, *(self._stem[lang].text(t) for t in texts)))
                words.update(w for t in texts for w in _words(t))
            self._db.executemany(f"INSERT INTO tips_{lang} VALUES (?, ?, ?, ?)", rows)
            self._vocabulary[lang] = frozenset(words)
            self._indexed[lang] = frozenset(stem for row in rows for text in row[1:]
                                            for stem in text.split())
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
        weights = ", ".join(str(w) for w in _WEIGHTS.values())
        rows = self._db.execute(
            f"SELECT tip_id, bm25(tips_{lang}, {weights}) AS score FROM tips_{lang} "
            f"WHERE tips_{lang} MATCH ? ORDER BY score", (query,)).fetchall()
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
        terms: dict[str, None] = {}
        for word in _words(question):
            if len(word) < _SHORTEST or word in _COMMON:
                continue
            for known in _known(word, vocabulary):
                stem = stems.word(known)
                if len(stem) >= _SHORTEST:
                    terms[stem] = None
        return list(terms)

    def _knows(self, term: str, lang: str) -> bool:
        """Does some tip use this stem (or, for a long one, a word starting with it)?"""
        indexed = self._indexed[lang]
        return term in indexed or (len(term) >= _PREFIX_FROM
                                   and any(stem.startswith(term) for stem in indexed))


class _Stems:
    """One language's Snowball stemmer, remembering words it has seen (a question's words
    are mostly ones it saw before)."""

    def __init__(self, algorithm: str) -> None:
        self._stemmer = snowballstemmer.stemmer(algorithm)
        self._seen: dict[str, str] = {}

    def word(self, word: str) -> str:
        stem = self._seen.get(word)
        if stem is None:
            stem = _plain(self._stemmer.stemWord(word))
            if len(self._seen) < 50_000:  # questions are free text: bound what is kept
                self._seen[word] = stem
        return stem

    def text(self, text: str) -> str:
        return " ".join(self.word(word) for word in _words(text))


def _words(text: str) -> Iterable[str]:
    return (word.lower() for word in _WORD.findall(text))


def _plain(word: str) -> str:
    """Without accents, as the index's tokenizer folds them (ideeën, idées)."""
    return "".join(c for c in unicodedata.normalize("NFD", word)
                   if not unicodedata.combining(c))


def _known(word: str, vocabulary: frozenset[str]) -> list[str]:
    """``word`` as the tips would write it: itself when they use it, else the closest word
    they use, else the two words it is made of (Dutch compounds), else itself."""
    if word in vocabulary:
        return [word]
    for split in range(len(word) - _SHORTEST, _SHORTEST, -1):  # the longest head first
        head, tail = word[:split], word[split:]
        if head in vocabulary:
            for rest in (tail, tail[1:] if tail[0] == "s" else ""):
                if rest in vocabulary:
                    return [head, rest]
    if len(word) < _CORRECT_FROM:  # a short word is more often a word the tips lack
        return [word]
    return difflib.get_close_matches(word, vocabulary, n=1, cutoff=_LIKENESS) or [word]
