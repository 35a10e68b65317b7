"""Full-text search over the tip library, per language: which tips answer a question.

The library is data shipped with the bot, so its index is built at start-up in an
in-memory SQLite FTS5 table (whatever database the bot itself uses) and ranked by FTS5's
BM25. The trigram tokenizer matches inside words, which suits Dutch compounds: "reviews"
finds "Google-reviews", "profiel" finds "bedrijfsprofiel".
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

from flows.definition import LANGUAGES
from flows.tips import Tip, TipLibrary

#: Query words shorter than this say little (de, het, een, le, la, the) and are dropped.
_SHORTEST = 4
#: Longer words that say as little in a question; matching them would rank tips by how
#: often they say "meer" or "pour".
_COMMON = frozenset("""
    meer hoe voor zijn mijn hebben welke waar moet moeten wordt worden deze niet ook maar
    naar over zich heel veel beter goed krijgen doen maken kunnen zou zouden iets eens
    winkel zaak graag jullie onze mijnen waarom wanneer wij hier daar nieuwe nieuw
    more what which should have with about from that this could would your does make best
    better good there when where shop store into some new
    comment avoir pour plus dans avec faire quel quelle quels sont mieux bien cette votre
    notre mon mes magasin commerce quand pourquoi est-ce peut être nouveau nouvelle
    """.split())  # noqa: SIM905 (a word list reads best as words)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


class TipSearch:
    """The tips of a library, searchable per language (:meth:`find`).

    Args:
        library: The tip library; its action, reason, kind and theme are indexed.
    """

    def __init__(self, library: TipLibrary) -> None:
        self.library = library
        # One connection, used only from the event loop; queries take microseconds.
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE tip_text USING fts5("
                         "tip_id UNINDEXED, lang UNINDEXED, body, tokenize='trigram')")
        self._db.executemany("INSERT INTO tip_text (tip_id, lang, body) VALUES (?, ?, ?)",
                             _rows(library.tips))
        self._db.commit()

    def find(self, question: str, lang: str, *, shop_type: str | None = None,
             limit: int = 3) -> list[Tip]:
        """The tips that best answer ``question`` in ``lang``, best first; never one that
        is meant for another shop type. Empty when nothing matches."""
        query = _query(question)
        if not query or lang not in LANGUAGES:
            return []
        rows = self._db.execute(
            "SELECT tip_id FROM tip_text WHERE tip_text MATCH ? AND lang = ? "
            "ORDER BY bm25(tip_text) LIMIT ?", (query, lang, limit * 5)).fetchall()
        found: list[Tip] = []
        for (tip_id,) in rows:
            tip = self.library.get(tip_id)
            if tip is not None and tip.fits(shop_type, None):
                found.append(tip)
            if len(found) == limit:
                break
        return found


def _rows(tips: Iterable[Tip]) -> Iterable[tuple[str, str, str]]:
    for tip in tips:
        for lang in LANGUAGES:
            words = f"{tip.action[lang]} {tip.why[lang]} {tip.kind.replace('_', ' ')}"
            yield tip.id, lang, words


def _query(question: str) -> str:
    """An FTS5 query that matches any of the question's meaningful words (each quoted, so
    no word is read as FTS5 syntax)."""
    words = dict.fromkeys(w.lower() for w in _WORD.findall(question) if len(w) >= _SHORTEST)
    words = {w: None for w in words if w not in _COMMON}
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
